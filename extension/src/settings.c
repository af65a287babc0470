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
 * superuser can clear it.
 */
#include "postgres.h"

#include "compat.h"

#include "lib/stringinfo.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"

#include "batch/batch.h"
#include "settings.h"

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
placeholder_refused(const char *name)
{
	struct config_generic *placeholder = find_option(name, false, true, ERROR);
	struct config_string *string = (struct config_string *) placeholder;

	if (placeholder == NULL)
		return false;
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

/*
 * Defines a PGC_SUSET string setting; appends its name to refused when the
 * session had set its placeholder, at any level, with a value PostgreSQL
 * refuses, an empty one included.
 */
static void
define_locked_string(const char *name, const char *description, char **variable, int flags,
					 StringInfo refused)
{
	if (placeholder_refused(name))
		appendStringInfo(refused, "%s%s", refused->len ? ", " : "", name);
	DefineCustomStringVariable(name, description, NULL, variable, "",
							   PGC_SUSET, flags, NULL, NULL, NULL);
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

void
settings_define(void)
{
	StringInfoData refused;

	initStringInfo(&refused);
	for (int i = 0; i < lengthof(locked_settings); i++)
		define_locked_string(locked_settings[i].name, locked_settings[i].description,
							 locked_settings[i].variable, 0, &refused);
	/* A session may not clear its own refusal by setting it first. */
	define_locked_string(REFUSED_SETTINGS,
						 "Settings this session tried to set without the privilege to (read-only).",
						 &refused_settings,
						 GUC_NO_RESET_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_DISALLOW_IN_AUTO_FILE,
						 &refused);

	DefineCustomIntVariable("aws_ml.connect_timeout_ms",
							"Time limit for opening a connection to an AWS service.",
							NULL, &connect_timeout_ms, 5000, 1, 600000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aws_ml.request_timeout_ms",
							"Time limit for reading one answer of an AWS service.",
							NULL, &request_timeout_ms, 60000, 1, 3600000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	for (int i = 0; i < lengthof(service_timeouts); i++)
		DefineCustomIntVariable(service_timeouts[i].name, service_timeouts[i].description,
								"0: aws_ml.request_timeout_ms.", service_timeouts[i].variable,
								service_timeouts[i].default_ms, 0, 3600000, PGC_SUSET, 0,
								NULL, NULL, NULL);
	DefineCustomIntVariable("aws_ml.max_attempts",
							"Attempts per request, the first included, when AWS throttles or fails transiently.",
							NULL, &max_attempts, 5, 1, 20,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("aws_ml.statement_cache",
							 "Send identical requests within one SQL statement once: on (all but "
							 "aws_bedrock.invoke_model), always, or off.",
							 NULL, &statement_cache, STATEMENT_CACHE_ON, statement_cache_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("aws_ml.batch_mode",
							 "Send the aws_ml calls of a query in batches, as Aurora's batch mode does.",
							 NULL, &batch_mode, true,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aws_ml.max_concurrency",
							"Requests of one batch sent at the same time.",
							NULL, &max_concurrency, 4, 1, 32,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("aws_s3.max_file_size",
							"Size at which aws_s3.query_export_to_s3 goes on in a new file (_part2, ...).",
							"At most 80GB: S3 takes 10,000 parts of 8 MB a file.",
							&s3_max_file_size_kb, 6 * 1024 * 1024, 1, S3_MAX_FILE_SIZE_KB,
							PGC_USERSET, GUC_UNIT_KB, NULL, NULL, NULL);

	if (refused.len > 0)
		SetConfigOption(REFUSED_SETTINGS, refused.data, PGC_INTERNAL, PGC_S_OVERRIDE);
	pfree(refused.data);

	MarkGUCPrefixReserved("aws_ml");
	MarkGUCPrefixReserved("aws_s3");
}
