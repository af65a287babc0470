/*
 * aws_ml.c: the aws_ml module's settings (GUCs).
 *
 * The settings that decide where the server's AWS credentials are sent
 * (region, endpoint URLs, role ARNs) are PGC_SUSET: only a superuser or the
 * server configuration can set them.  PostgreSQL enforces that only once this
 * module has defined them in the backend, so the Python layer LOADs the module
 * (from $libdir/plugins, which non-superusers may load) before it reads any
 * setting; a value a non-superuser set earlier as a placeholder is then
 * discarded with a WARNING instead of being honoured.
 *
 * Discarding it can also lose the server configuration's value (a
 * connection's "-c" option replaces it in the placeholder), so the names of
 * the settings whose session value was refused are kept in the read-only
 * aws_ml.refused_settings, and the Python layer refuses to send anything from
 * such a session.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/guc.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

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
static StringInfoData refused;
static int	connect_timeout_ms = 5000;
static int	request_timeout_ms = 60000;
static int	max_attempts = 5;
static bool statement_cache = true;

static void
define_locked_string(const char *name, const char *description, char **variable)
{
	const char *placeholder = GetConfigOption(name, true, false);
	char	   *wanted = placeholder ? pstrdup(placeholder) : NULL;

	DefineCustomStringVariable(name, description, NULL, variable, "",
							   PGC_SUSET, 0, NULL, NULL, NULL);
	if (wanted && strcmp(wanted, *variable ? *variable : "") != 0)
		appendStringInfo(&refused, "%s%s", refused.len ? ", " : "", name);
}

void
_PG_init(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	initStringInfo(&refused);
	MemoryContextSwitchTo(old);

	/*
	 * During a parallel operation PostgreSQL refuses to set parameters, so the
	 * server configuration's aws_ml.* values could not be applied and the
	 * session would silently run without them. Refuse to load instead: this
	 * module is not marked loaded, and the next load, outside a parallel
	 * operation, defines the settings properly.
	 */
	if (IsInParallelMode())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("aws_ml: the aws_ml module cannot be loaded during a parallel operation"),
				 errhint("Add '$libdir/plugins/aws_ml' to session_preload_libraries, or call an aws_ml "
						 "function once in the session before the parallel query.")));
	define_locked_string("aws_ml.region",
						 "AWS Region of the ML services (default: the server's AWS_REGION or AWS_DEFAULT_REGION).",
						 &region);
	define_locked_string("aws_ml.endpoint_url",
						 "Endpoint URL for every AWS service aws_ml calls (default: the AWS endpoints of the region).",
						 &endpoint_url);
	define_locked_string("aws_ml.comprehend_endpoint_url",
						 "Endpoint URL for Amazon Comprehend, overriding aws_ml.endpoint_url.",
						 &comprehend_endpoint_url);
	define_locked_string("aws_ml.sagemaker_endpoint_url",
						 "Endpoint URL for the SageMaker runtime, overriding aws_ml.endpoint_url.",
						 &sagemaker_endpoint_url);
	define_locked_string("aws_ml.bedrock_endpoint_url",
						 "Endpoint URL for the Bedrock runtime, overriding aws_ml.endpoint_url.",
						 &bedrock_endpoint_url);
	define_locked_string("aws_ml.sts_endpoint_url",
						 "Endpoint URL for AWS STS (AssumeRole), overriding aws_ml.endpoint_url.",
						 &sts_endpoint_url);
	define_locked_string("aws_ml.comprehend_role_arn",
						 "IAM role assumed for Amazon Comprehend calls (empty: the base credentials).",
						 &comprehend_role_arn);
	define_locked_string("aws_ml.sagemaker_role_arn",
						 "IAM role assumed for SageMaker runtime calls (empty: the base credentials).",
						 &sagemaker_role_arn);
	define_locked_string("aws_ml.bedrock_role_arn",
						 "IAM role assumed for Bedrock runtime calls (empty: the base credentials).",
						 &bedrock_role_arn);

	DefineCustomIntVariable("aws_ml.connect_timeout_ms",
							"Time limit for opening a connection to an AWS service.",
							NULL, &connect_timeout_ms, 5000, 1, 600000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aws_ml.request_timeout_ms",
							"Time limit for reading one answer of an AWS service.",
							NULL, &request_timeout_ms, 60000, 1, 3600000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aws_ml.max_attempts",
							"Attempts per request, the first included, when AWS throttles or fails transiently.",
							NULL, &max_attempts, 5, 1, 20,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("aws_ml.statement_cache",
							 "Send identical requests within one SQL statement once.",
							 NULL, &statement_cache, true,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("aws_ml.refused_settings",
							   "Settings this session tried to set without the privilege to (read-only).",
							   NULL, &refused_settings, refused.data,
							   PGC_INTERNAL, GUC_NO_RESET_ALL | GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("aws_ml");
#else
	EmitWarningsOnPlaceholders("aws_ml");
#endif
}

PG_FUNCTION_INFO_V1(aws_ml_plan_support);

/*
 * aws_ml._plan_support(internal): the planner support function of every
 * aws_ml function. It handles no request: the planner calling it loads this
 * module at plan time, before the executor can enter parallel mode, where
 * loading it fails (above). The functions' SET clause would otherwise delay
 * the load to their first call.
 */
Datum
aws_ml_plan_support(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(NULL);
}
