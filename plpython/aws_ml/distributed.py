"""Backfills of Citus tables (docs/scaling.md).

A distributed table's shards are plain tables on the nodes that hold them.
Each such node fills its own shards, one after another in one backend, on a
connection that Citus's master_run_on_worker opens outside the caller's
transaction (and cancels with it): the node's requests go out from there,
aws_ml.max_concurrency of them at a time. It answers with the rows it filled
and the error that stopped it, which the calling node raises as its own
(master_run_on_worker keeps only the first line of an error, without its
SQLSTATE).

A reference table has a copy on every node, which Citus writes as one: it is
filled from the calling node like a plain table, through Citus, its rows
named by primary key rather than by ctid, which differs between the copies."""
import json
from dataclasses import dataclass
from typing import Any, Collection, Dict, List, Optional, Tuple

from . import row_address
from .errors import NOT_CONFIGURED, AwsMlError

Node = Tuple[str, int]  # (host, port)

FEATURE_NOT_SUPPORTED = "0A000"
CONNECTION_FAILURE = "08006"  # postgres_fdw's, for a remote error without its SQLSTATE

# What decides where a node's requests go and whose credentials sign them:
# the same on every node, or a backfill refuses to start.
SHARED_SETTINGS = ("region", "endpoint_url", "comprehend_endpoint_url", "sagemaker_endpoint_url",
                   "bedrock_endpoint_url", "sts_endpoint_url", "comprehend_role_arn", "sagemaker_role_arn",
                   "bedrock_role_arn")
# A node's values of them, as JSON text (set in postgresql.conf, they read
# the same whether or not the aws_ml module is loaded there yet).
_SETTINGS = ("SELECT pg_catalog.json_build_object(" + ", ".join(
    f"'{name}', COALESCE(pg_catalog.current_setting('aws_ml.{name}', true), '')"
    for name in SHARED_SETTINGS) + ")::pg_catalog.text AS settings")

_HAS_CITUS = "SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus'"
_NAMED = ("SELECT FROM pg_catalog.pg_dist_partition "
          "WHERE logicalrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)")
_REPLICATED = ("SELECT repmodel OPERATOR(pg_catalog.=) 't' AS replicated FROM pg_catalog.pg_dist_partition "
               "WHERE logicalrelid OPERATOR(pg_catalog.=) $1")
_SHARDS = (
    "SELECT pg_catalog.shard_name(s.logicalrelid, s.shardid) AS name, n.nodename AS host, n.nodeport AS port, "
    "pg_catalog.count(*) OVER (PARTITION BY s.shardid) AS copies "
    "FROM pg_catalog.pg_dist_shard s "
    "JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid "
    "JOIN pg_catalog.pg_dist_node n ON n.groupid OPERATOR(pg_catalog.=) p.groupid "
    "AND n.noderole OPERATOR(pg_catalog.=) 'primary' "
    "WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1 ORDER BY s.shardid")
# The literals of a node's CALL: its shards (text[]), then each argument (text).
_LITERALS = ("SELECT pg_catalog.quote_literal($1::pg_catalog.text[]::pg_catalog.text) AS shards, "
             "ARRAY(SELECT pg_catalog.quote_nullable(a) FROM pg_catalog.unnest($2::pg_catalog.text[]) "
             "WITH ORDINALITY AS u(a, i) ORDER BY i) AS arguments")
_RUN_ON_NODES = ("SELECT node_name AS host, node_port AS port, success, result "
                 "FROM pg_catalog.master_run_on_worker($1::pg_catalog.text[], $2::pg_catalog.int4[], "
                 "$3::pg_catalog.text[], true)")


@dataclass(frozen=True)
class Shard:
    name: str  # schema-qualified and quoted, as on its node
    host: str
    port: int


@dataclass(frozen=True)
class ShardCall:
    """The internal procedure that runs a backfill on the shards of a node
    (shards regclass[], arguments..., INOUT outcome jsonb), and the
    backfill's arguments after its table."""
    procedure: str
    arguments: Tuple[Any, ...]


def placement(procedure: str, relid: int, table: str) -> Tuple[Optional[List[Shard]], row_address.RowAddress]:
    """(the shards of table (relid) if Citus distributes it, else None; how
    rows of it filled here are named)."""
    import plpy
    if not plpy.execute(_HAS_CITUS):
        return None, row_address.CTID
    citus = plpy.execute(plpy.prepare(_REPLICATED, ["pg_catalog.oid"]), [relid])
    if not citus:
        return None, row_address.CTID
    if citus[0]["replicated"]:
        return None, row_address.primary_key(procedure, relid, table,
                                             "It is a Citus reference table, whose copies' ctids differ.")
    shards = plpy.execute(plpy.prepare(_SHARDS, ["pg_catalog.oid"]), [relid])
    if any(shard["copies"] != 1 for shard in shards):
        raise AwsMlError(FEATURE_NOT_SUPPORTED, f"{procedure} fills each shard of {table} on its node, and some "
                         "of its shards have several copies", hint="Fill it with an UPDATE (docs/scaling.md).")
    return [Shard(shard["name"], shard["host"], shard["port"]) for shard in shards], row_address.CTID


def managed_by_citus(table_name: str) -> bool:
    """Whether the table that table_name (text) names is a Citus table:
    distributed, reference or Citus-managed local."""
    import plpy
    return bool(plpy.execute(_HAS_CITUS)) and bool(plpy.execute(plpy.prepare(_NAMED, ["pg_catalog.text"]),
                                                                [table_name]))


def fill_on_nodes(procedure: str, call: ShardCall, shards: List[Shard]) -> int:
    """Fills shards (Shard each), each node its own at once; answers the rows
    filled, or raises the error that stopped a node (the first node's). Each
    node's settings are checked first, before any request."""
    import plpy
    nodes: Dict[Node, List[str]] = {}  # the names of its shards
    for shard in shards:
        nodes.setdefault((shard.host, shard.port), []).append(shard.name)
    _refuse_other_settings(procedure, nodes)
    literals = plpy.prepare(_LITERALS, ["pg_catalog.text[]", "pg_catalog.text[]"])
    arguments = [None if value is None else str(value) for value in call.arguments]
    commands = []
    for names in nodes.values():
        quoted = plpy.execute(literals, [names, arguments])[0]
        commands.append(f"CALL {call.procedure}({', '.join([quoted['shards'], *quoted['arguments']])})")
    done, stopped = 0, []
    for where, outcome in _run_on_nodes(procedure, nodes, commands):
        outcome = json.loads(outcome)
        done += outcome["done"]
        if "error" in outcome:
            error = outcome["error"]
            stopped.append(AwsMlError(error["sqlstate"], f"{error['message']} (on {where})", error["detail"],
                                      error["hint"]))
    if stopped:
        raise stopped[0]
    return done


def _run_on_nodes(procedure: str, nodes: Collection[Node], commands: List[str]) -> List[Tuple[str, str]]:
    """(node, its command's result) for each of nodes ((host, port) each) and
    its command, run at once; raises when a node could not answer."""
    import plpy
    results = plpy.execute(plpy.prepare(_RUN_ON_NODES, ["pg_catalog.text[]", "pg_catalog.int4[]",
                                                        "pg_catalog.text[]"]),
                           [[host for host, _ in nodes], [port for _, port in nodes], commands])
    for node in results:
        where = f"node {node['host']}:{node['port']}"
        if not node["success"]:
            raise AwsMlError(CONNECTION_FAILURE, f"{procedure} failed on {where}: {node['result']}",
                             hint="Check that the node is up and has aws_ml installed, and its server log. "
                                  "The batches it committed stay; CALL again to go on.")
    return [(f"node {node['host']}:{node['port']}", node["result"]) for node in results]


def _refuse_other_settings(procedure: str, nodes: Collection[Node]) -> None:
    import plpy
    here = json.loads(plpy.execute(_SETTINGS)[0]["settings"])
    for where, answer in _run_on_nodes(procedure, nodes, [_SETTINGS] * len(nodes)):
        differing = [name for name, value in json.loads(answer).items() if here[name] != value]
        if differing:
            raise AwsMlError(NOT_CONFIGURED, f"{procedure}: the aws_ml settings of {where} differ from this node's: "
                             + ", ".join(f"aws_ml.{name}" for name in differing),
                             hint="Set them the same on every node (docs/scaling.md), then CALL again.")
