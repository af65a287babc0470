/*
 * copy_to_callback.c: COPY (query) TO a callback that takes what COPY
 * (query) TO STDOUT writes, byte for byte (compat.h).
 *
 * 16 and later: BeginCopyTo's own callback, which receives each row of a
 * text or CSV COPY without its line end; this adds it.
 *
 * 15, whose BeginCopyTo takes no callback: COPY (query) TO STDOUT runs with
 * the protocol's functions swapped: its rows (CopyData) go to the callback,
 * its CopyOutResponse and CopyDone nowhere, anything else (a notice the
 * query raises) to the client as before, if the session has one.
 */
#include "postgres.h"

#include "compat.h"

/*
 * Puts context on the error context stack, if not NULL, while BeginCopyTo
 * runs; an error there leaves it to the PG_TRY around to take it off.
 */
static void
begin_analysis(ErrorContextCallback *context)
{
	if (context == NULL)
		return;
	context->previous = error_context_stack;
	error_context_stack = context;
}

static void
end_analysis(ErrorContextCallback *context)
{
	if (context != NULL)
		error_context_stack = context->previous;
}

#if PG_VERSION_NUM >= 160000

/* the callback of the COPY running, and whether its rows end in a newline */
static copy_data_dest_cb destination = NULL;
static bool lines = false;

static void
copy_line(void *data, int len)
{
	destination(data, len);
	if (lines)
		destination("\n", 1);
}

uint64
copy_query_to_callback(ParseState *pstate, RawStmt *query, List *options, copy_data_dest_cb callback,
					   ErrorContextCallback *analysis_context)
{
	copy_data_dest_cb outer_destination = destination;
	bool		outer_lines = lines;
	CopyFormatOptions format = {0};
	volatile uint64 rows = 0;

	ProcessCopyOptions(NULL, &format, false, options);
	PG_TRY();
	{
		CopyToState state;

		/* the query may run another COPY to a callback */
		destination = callback;
		lines = !format.binary;
		begin_analysis(analysis_context);
		state = BeginCopyTo(pstate, NULL, query, InvalidOid, NULL, false, copy_line, NIL, options);
		end_analysis(analysis_context);
		rows = DoCopyTo(state);
		EndCopyTo(state);
	}
	PG_FINALLY();
	{
		destination = outer_destination;
		lines = outer_lines;
	}
	PG_END_TRY();
	return rows;
}

#else

/*
 * libpq/libpq.h declares struct Port with the GSSAPI and OpenSSL types, whose
 * headers the server's own may not be installed with; this file uses no Port.
 */
#undef ENABLE_GSS
#undef USE_OPENSSL
#include "libpq/libpq.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"

static copy_data_dest_cb destination = NULL;
static const PQcommMethods *client_methods = NULL;
static bool client_connected = false;

static int
copy_putmessage(char msgtype, const char *s, size_t len)
{
	if (msgtype == 'd')
		destination((void *) s, (int) len);
	else if (msgtype != 'H' && msgtype != 'c' && client_connected)
		return client_methods->putmessage(msgtype, s, len);
	return 0;
}

static void
copy_putmessage_noblock(char msgtype, const char *s, size_t len)
{
	(void) copy_putmessage(msgtype, s, len);
}

static void
copy_comm_reset(void)
{
	if (client_connected)
		client_methods->comm_reset();
}

static int
copy_flush(void)
{
	return client_connected ? client_methods->flush() : 0;
}

static int
copy_flush_if_writable(void)
{
	return client_connected ? client_methods->flush_if_writable() : 0;
}

static bool
copy_is_send_pending(void)
{
	return client_connected && client_methods->is_send_pending();
}

static const PQcommMethods copy_methods = {
	copy_comm_reset,
	copy_flush,
	copy_flush_if_writable,
	copy_is_send_pending,
	copy_putmessage,
	copy_putmessage_noblock
};

uint64
copy_query_to_callback(ParseState *pstate, RawStmt *query, List *options, copy_data_dest_cb callback,
					   ErrorContextCallback *analysis_context)
{
	copy_data_dest_cb outer_destination = destination;
	bool		outermost = (PqCommMethods != &copy_methods);
	CommandDest outer_where = whereToSendOutput;
	volatile uint64 rows = 0;

	if (outermost)
	{
		client_methods = PqCommMethods;
		client_connected = (whereToSendOutput == DestRemote);
	}
	PG_TRY();
	{
		CopyToState state;

		destination = callback;
		PqCommMethods = &copy_methods;
		/* the protocol's path, even in a session without a client */
		whereToSendOutput = DestRemote;
		begin_analysis(analysis_context);
		state = BeginCopyTo(pstate, NULL, query, InvalidOid, NULL, false, NIL, options);
		end_analysis(analysis_context);
		rows = DoCopyTo(state);
		EndCopyTo(state);
	}
	PG_FINALLY();
	{
		destination = outer_destination;
		whereToSendOutput = outer_where;
		if (outermost)
			PqCommMethods = client_methods;
	}
	PG_END_TRY();
	return rows;
}

#endif
