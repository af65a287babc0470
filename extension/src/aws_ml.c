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
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

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
static int	connect_timeout_ms = 5000;
static int	request_timeout_ms = 60000;
static int	max_attempts = 5;

static void
define_locked_string(const char *name, const char *description, char **variable)
{
	DefineCustomStringVariable(name, description, NULL, variable, "",
							   PGC_SUSET, 0, NULL, NULL, NULL);
}

void
_PG_init(void)
{
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

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("aws_ml");
#else
	EmitWarningsOnPlaceholders("aws_ml");
#endif
}
