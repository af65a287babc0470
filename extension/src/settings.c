/*
 * settings.c: the aws_ml.* settings (GUCs).
 *
 * The settings that decide where the server's AWS credentials are sent
 * (region, endpoint URLs, role ARNs) are PGC_SUSET: only a superuser or the
 * server configuration can set them. PostgreSQL enforces that only once this
 * module has defined them in the backend; until then they are placeholders
 * anyone can set. The module is loaded at plan time by the planner support
 * function of every aws_ml function, and the Python layer loads it before it
 * reads any setting, so a placeholder value a non-superuser set is then
 * discarded with a WARNING instead of being honoured.
 *
 * Discarding it can also lose the server configuration's value: a
 * connection's "-c" option, an empty one included, replaces that value in
 * the placeholder. So the names of the settings whose session value
 * PostgreSQL refused are kept in aws_ml.refused_settings, and the Python
 * layer refuses to send anything from such a session. That setting is
 * PGC_SUSET and set at PGC_S_OVERRIDE, so that parallel workers receive it
 * with the leader's other settings, an abort does not undo it, and only a
 * superuser can clear it. One mechanism serves every superuser-only setting
 * of both prefixes, whatever its type: the placeholders are read before any
 * setting is defined, and each one that turns out superuser-only is judged.
 */
#include "postgres.h"

#include "compat.h"

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/memutils.h"

#include "batch/batch.h"
#include "settings.h"

/*
 * Bumped whenever one of this module's settings changes (SET, RESET, a
 * function's SET clause, the end of a transaction or subtransaction, a
 * reload, a parallel worker's start): every setting has an assign hook that
 * bumps it. The Python layer keeps its snapshot of the settings until the
 * generation moves (aws_ml_settings).
 */
static uint64 settings_generation = 1;

static void
changed_string(const char *newval, void *extra)
{
	settings_generation++;
}

static void
changed_int(int newval, void *extra)
{
	settings_generation++;
}

/* aws_ml.statement_cache */
typedef enum StatementCache
{
	STATEMENT_CACHE_OFF,
	STATEMENT_CACHE_ON,			/* every call but text generation */
	STATEMENT_CACHE_ALWAYS
} StatementCache;

static const struct config_enum_entry statement_cache_options[] = {
	{"off", STATEMENT_CACHE_OFF, false},
	{"on", STATEMENT_CACHE_ON, false},
	{"always", STATEMENT_CACHE_ALWAYS, false},
	{"false", STATEMENT_CACHE_OFF, true},
	{"true", STATEMENT_CACHE_ON, true},
	{"no", STATEMENT_CACHE_OFF, true},
	{"yes", STATEMENT_CACHE_ON, true},
	{"0", STATEMENT_CACHE_OFF, true},
	{"1", STATEMENT_CACHE_ON, true},
	{NULL, 0, false}
};

#define REFUSED_SETTINGS "aws_ml.refused_settings"

static int	max_concurrency = 4;

static char *region = NULL;
static char *endpoint_url = NULL;
static char *comprehend_endpoint_url = NULL;
static char *sagemaker_endpoint_url = NULL;
static char *bedrock_endpoint_url = NULL;
static char *sts_endpoint_url = NULL;
static char *comprehend_role_arn = NULL;
static char *sagemaker_role_arn = NULL;
static char *bedrock_role_arn = NULL;
static char *refused_settings = NULL;
static char *s3_endpoint_url = NULL;
static char *s3_role_arn = NULL;
static int	s3_max_file_size_kb = 6 * 1024 * 1024;

/* aws_s3 uploads 8 MiB parts, and S3 takes at most 10,000 parts an object */
#define S3_MAX_FILE_SIZE_KB (10000 * 8 * 1024)
static int	connect_timeout_ms = 5000;
static int	request_timeout_ms = 60000;
static int	comprehend_request_timeout_ms = 0;
static int	sagemaker_request_timeout_ms = 70000;
static int	bedrock_request_timeout_ms = 300000;
static int	max_attempts = 5;
static int	statement_cache = STATEMENT_CACHE_ON;

/*
 * aws_ml.batch_mode and Aurora's apg_enable_function_migration are one
 * switch: batch mode (batch.h's batch_mode) is on while both are on. Each
 * keeps its own value, which PostgreSQL sets, stacks, resets and shows as
 * any setting's; their hooks, called before the new value is stored, keep
 * batch_mode their conjunction.
 */
static bool batch_mode_setting = true;
static bool function_migration = true;

static void
assign_batch_mode(bool newval, void *extra)
{
	batch_mode = newval && function_migration;
	settings_generation++;
}

static void
assign_function_migration(bool newval, void *extra)
{
	batch_mode = batch_mode_setting && newval;
	settings_generation++;
}

/*
 * Whether PostgreSQL refuses a value of the PGC_SUSET setting name that was
 * set in context by role, as set_config_option does when it defines the
 * setting over its placeholder.
 */
static bool
set_without_privilege(const char *name, GucSource source, GucContext context, Oid role)
{
	if (source == PGC_S_DEFAULT || (context != PGC_USERSET && context != PGC_BACKEND))
		return false;
	return pg_parameter_aclcheck(name, role, ACL_SET) != ACLCHECK_OK;
}

/*
 * Whether the placeholder of name holds a value, at any level, that
 * PostgreSQL will refuse when the setting is defined: its reset value, its
 * current one, or one saved by an enclosing SET or function SET clause. The
 * current level alone is not enough: a superuser's function may set the
 * setting over a refused session value that comes back when it returns.
 */
static bool
placeholder_refused(struct config_generic *placeholder)
{
	const char *name = placeholder->name;
	struct config_string *string = (struct config_string *) placeholder;

	if ((string->reset_val &&
		 set_without_privilege(name, placeholder->reset_source, placeholder->reset_scontext,
							   placeholder->reset_srole)) ||
		(*string->variable &&
		 set_without_privilege(name, placeholder->source, placeholder->scontext,
							   placeholder->srole)))
		return true;
	for (GucStack *stack = placeholder->stack; stack != NULL; stack = stack->prev)
	{
		if ((stack->prior.val.stringval &&
			 set_without_privilege(name, stack->source, stack->scontext,
								   stack->srole)) ||
			(stack->state == GUC_SET_LOCAL &&
			 set_without_privilege(name, PGC_S_SESSION, stack->masked_scontext,
								   stack->masked_srole)))
			return true;
	}
	return false;
}

/* Whether name is one of this module's settings: aws_ml.* or aws_s3.* */
static bool
is_module_setting(const char *name)
{
	return pg_strncasecmp(name, "aws_ml.", strlen("aws_ml.")) == 0 ||
		pg_strncasecmp(name, "aws_s3.", strlen("aws_s3.")) == 0;
}

/*
 * The names of this module's placeholders that hold, at some level, a value
 * PostgreSQL will refuse if the setting defined over them is superuser-only.
 * Read before any setting is defined: defining one replaces its placeholder.
 */
static List *
placeholders_set_without_privilege(void)
{
	List	   *names = NIL;
	int			count;
	struct config_generic **settings = guc_variables(&count);

	for (int i = 0; i < count; i++)
	{
		if ((settings[i]->flags & GUC_CUSTOM_PLACEHOLDER) && is_module_setting(settings[i]->name) &&
			placeholder_refused(settings[i]))
			names = lappend(names, pstrdup(settings[i]->name));
	}
	return names;
}

/*
 * The names, separated by commas, of candidates (placeholders'
 * names) whose setting, now defined, only a superuser or the server
 * configuration may set; empty when there is none.
 */
static char *
refused_among(List *candidates)
{
	StringInfoData refused;
	ListCell   *cell;

	initStringInfo(&refused);
	foreach(cell, candidates)
	{
		const char *name = lfirst(cell);
		struct config_generic *setting = find_option(name, false, true, ERROR);

		if (setting != NULL && !(setting->flags & GUC_CUSTOM_PLACEHOLDER) &&
			setting->context != PGC_USERSET && setting->context != PGC_BACKEND)
			appendStringInfo(&refused, "%s%s", refused.len ? ", " : "", setting->name);
	}
	return refused.data;
}

/* The settings that decide where the server's credentials are sent. */
static const struct
{
	const char *name;
	const char *description;
	char	  **variable;
}			locked_settings[] = {
	{"aws_ml.region",
	"AWS Region of the ML services (default: the server's AWS_REGION or AWS_DEFAULT_REGION).", &region},
	{"aws_ml.endpoint_url",
	"Endpoint URL for every AWS service aws_ml calls (default: the AWS endpoints of the region).", &endpoint_url},
	{"aws_ml.comprehend_endpoint_url",
	"Endpoint URL for Amazon Comprehend, overriding aws_ml.endpoint_url.", &comprehend_endpoint_url},
	{"aws_ml.sagemaker_endpoint_url",
	"Endpoint URL for the SageMaker runtime, overriding aws_ml.endpoint_url.", &sagemaker_endpoint_url},
	{"aws_ml.bedrock_endpoint_url",
	"Endpoint URL for the Bedrock runtime, overriding aws_ml.endpoint_url.", &bedrock_endpoint_url},
	{"aws_ml.sts_endpoint_url",
	"Endpoint URL for AWS STS (AssumeRole), overriding aws_ml.endpoint_url.", &sts_endpoint_url},
	{"aws_ml.comprehend_role_arn",
	"IAM role assumed for Amazon Comprehend calls (empty: the base credentials).", &comprehend_role_arn},
	{"aws_ml.sagemaker_role_arn",
	"IAM role assumed for SageMaker runtime calls (empty: the base credentials).", &sagemaker_role_arn},
	{"aws_ml.bedrock_role_arn",
	"IAM role assumed for Bedrock runtime calls (empty: the base credentials).", &bedrock_role_arn},
	{"aws_s3.endpoint_url",
	"Endpoint URL for Amazon S3 (default: aws_ml.endpoint_url, else the AWS endpoint of the region).",
	&s3_endpoint_url},
	{"aws_s3.role_arn",
	"IAM role assumed for the aws_s3 transfers (empty: the base credentials).", &s3_role_arn},
};

/*
 * Each service's time limit for one answer: SageMaker models may take 60 s
 * (AWS suggests a 70 s socket timeout), large Bedrock models minutes.
 */
static const struct
{
	const char *name;
	const char *description;
	int		   *variable;
	int			default_ms;
}			service_timeouts[] = {
	{"aws_ml.comprehend_request_timeout_ms",
	"Time limit for reading one answer of Amazon Comprehend.", &comprehend_request_timeout_ms, 0},
	{"aws_ml.sagemaker_request_timeout_ms",
	"Time limit for reading one answer of a SageMaker endpoint.", &sagemaker_request_timeout_ms, 70000},
	{"aws_ml.bedrock_request_timeout_ms",
	"Time limit for reading one answer of a Bedrock model.", &bedrock_request_timeout_ms, 300000},
};

uint64
settings_generation_now(void)
{
	return settings_generation;
}

/*
 * This module's settings and their values as text, "name\0value\0" each, in
 * a buffer that stays until the next call; *length: its bytes. The Python
 * layer reads them all at once when the generation has moved, instead of
 * each by name: the list of settings is the one defined here.
 */
const char *
aws_ml_settings(int *length)
{
	static StringInfo snapshot = NULL;
	int			count;
	struct config_generic **settings = guc_variables(&count);

	if (snapshot == NULL)
	{
		MemoryContext previous = MemoryContextSwitchTo(TopMemoryContext);

		snapshot = makeStringInfo();
		MemoryContextSwitchTo(previous);
	}
	resetStringInfo(snapshot);
	for (int i = 0; i < count; i++)
	{
		const char *name = settings[i]->name;
		const char *value;

		if ((settings[i]->flags & GUC_CUSTOM_PLACEHOLDER) || !is_module_setting(name))
			continue;
		value = GetConfigOption(name, true, false);
		appendBinaryStringInfo(snapshot, name, strlen(name) + 1);
		appendStringInfoString(snapshot, value ? value : "");
		appendStringInfoChar(snapshot, '\0');
	}
	*length = snapshot->len;
	return snapshot->data;
}

void
settings_define(void)
{
	List	   *set_without_privilege = placeholders_set_without_privilege();
	char	   *refused;

	for (int i = 0; i < lengthof(locked_settings); i++)
		DefineCustomStringVariable(locked_settings[i].name, locked_settings[i].description, NULL,
								   locked_settings[i].variable, "", PGC_SUSET, 0, NULL, changed_string, NULL);
	/* A session may not clear its own refusal by setting it first. */
	DefineCustomStringVariable(REFUSED_SETTINGS,
							   "Settings this session tried to set without the privilege to (read-only).",
							   NULL, &refused_settings, "", PGC_SUSET,
							   GUC_NO_RESET_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE |
							   GUC_DISALLOW_IN_AUTO_FILE,
							   NULL, changed_string, NULL);

	DefineCustomIntVariable("aws_ml.connect_timeout_ms",
							"Time limit for opening a connection to an AWS service.",
							NULL, &connect_timeout_ms, 5000, 1, 600000,
							PGC_USERSET, 0, NULL, changed_int, NULL);
	DefineCustomIntVariable("aws_ml.request_timeout_ms",
							"Time limit for reading one answer of an AWS service.",
							NULL, &request_timeout_ms, 60000, 1, 3600000,
							PGC_USERSET, 0, NULL, changed_int, NULL);
	for (int i = 0; i < lengthof(service_timeouts); i++)
		DefineCustomIntVariable(service_timeouts[i].name, service_timeouts[i].description,
								"0: aws_ml.request_timeout_ms.", service_timeouts[i].variable,
								service_timeouts[i].default_ms, 0, 3600000, PGC_SUSET, 0,
								NULL, changed_int, NULL);
	DefineCustomIntVariable("aws_ml.max_attempts",
							"Attempts per request, the first included, when AWS throttles or fails transiently.",
							NULL, &max_attempts, 5, 1, 20,
							PGC_USERSET, 0, NULL, changed_int, NULL);
	DefineCustomEnumVariable("aws_ml.statement_cache",
							 "Send identical requests within one SQL statement once: on (all but "
							 "aws_bedrock.invoke_model), always, or off.",
							 NULL, &statement_cache, STATEMENT_CACHE_ON, statement_cache_options,
							 PGC_USERSET, 0, NULL, changed_int, NULL);
	DefineCustomBoolVariable("aws_ml.batch_mode",
							 "Send the aws_ml calls of a query in batches, as Aurora's batch mode does.",
							 NULL, &batch_mode_setting, true,
							 PGC_USERSET, 0, NULL, assign_batch_mode, NULL);
	DefineCustomBoolVariable("apg_enable_function_migration",
							 "Aurora's name for aws_ml.batch_mode: batch mode is on while both are on.",
							 "Settable only where the aws_ml module is loaded (docs/batch-mode.md).",
							 &function_migration, true,
							 PGC_USERSET, GUC_DISALLOW_IN_FILE | GUC_DISALLOW_IN_AUTO_FILE,
							 NULL, assign_function_migration, NULL);
	DefineCustomIntVariable("aws_ml.max_concurrency",
							"Requests of one batch sent at the same time.",
							NULL, &max_concurrency, 4, 1, 32,
							PGC_USERSET, 0, NULL, changed_int, NULL);

	DefineCustomIntVariable("aws_s3.max_file_size",
							"Size at which aws_s3.query_export_to_s3 goes on in a new file (_part2, ...).",
							"At most 80000MB: S3 takes 10,000 parts of 8 MB a file.",
							&s3_max_file_size_kb, 6 * 1024 * 1024, 1, S3_MAX_FILE_SIZE_KB,
							PGC_USERSET, GUC_UNIT_KB, NULL, changed_int, NULL);

	refused = refused_among(set_without_privilege);
	if (refused[0] != '\0')
		SetConfigOption(REFUSED_SETTINGS, refused, PGC_INTERNAL, PGC_S_OVERRIDE);
	pfree(refused);
	list_free_deep(set_without_privilege);

	MarkGUCPrefixReserved("aws_ml");
	MarkGUCPrefixReserved("aws_s3");
}
