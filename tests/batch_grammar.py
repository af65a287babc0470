"""A grammar of query shapes around aws_ml's calls, for the differential test
of batch mode (tests/test_batch_differential.py).

Every relation the grammar makes, tables and subqueries alike, has the
columns (id int, g int, body text, x float8, y float8), so that any shape
nests in any other. Expressions are drawn by kind (int, text, float, bool)
over the columns in scope; calls of the four functions and of the
reference's SQL wrappers may appear wherever an expression of their kind
may.

Errors (a division by zero, a bad cast, an input the service refuses) are
drawn only where batch mode evaluates exactly the rows row by row does, so
that reading ahead (docs/batch-mode.md: a non-volatile expression below the
batching node may fail for a row the query would not have reached) is never
what a difference shows: the select list of the statement's own query (of
each branch of a set operation at its top), outside the arguments of
aggregates and window functions, and its WHERE when it reads one table and
neither groups nor has window functions. Everywhere else the calls' inputs
are made safe (Comprehend's texts cut to 1,000 characters, Bedrock's never
empty or NULL, classify_event's amount whole) and no error is drawn.

Volatile expressions (a logging function, nextval, random()) are drawn
anywhere; without the feature "volatile_below", only where errors may be,
out of the reach of a batching node's reading ahead.
"""
import re
from dataclasses import dataclass, field, replace

from hypothesis import assume
from hypothesis import strategies as st

CAST = {"int": "int", "text": "text", "float": "float8", "bool": "boolean"}
OUTPUT = (("id", "int"), ("g", "int"), ("body", "text"), ("x", "float"), ("y", "float"))
TABLES = ("fz_a", "fz_b", "fz_p")  # fz_p: fz_a's rows, partitioned by g

# Parts of the grammar a run may leave out (AWS_ML_DIFFERENTIAL_WITHOUT), to look past a divergence filed.
FEATURES = frozenset({
    "volatile", "volatile_below", "errors", "subquery", "join", "lateral", "cte", "setop", "grouping", "window",
    "limit", "ties", "cursor", "implicit_scroll", "current_of", "dml", "loop", "prepared", "fresh_session", "parallel",
    "comprehend", "sagemaker", "bedrock", "wrappers", "max_rows_column",
})
# Not drawn under a parallel plan: what depends on the order rows come in, which differs from run to run, and
# subqueries run again for each outer row, each run launching workers that load the Python stack (0.3 s).
NOT_PARALLEL = frozenset({"volatile", "volatile_below", "errors", "window", "limit", "ties", "cursor", "current_of",
                          "dml", "loop", "prepared", "fresh_session", "subquery", "lateral"})

LITERALS = {"int": ("0", "1", "2", "-1"), "text": ("'I love it'", "'awful'", "''"),
            "float": ("0.5", "2.0", "-1.0"), "bool": ("true", "false")}
# Expressions by kind: each {kind} is an expression of that kind, drawn.
FORMS = {
    "int": ("({int} + {int})", "({int} % 3)", "length({text})"),
    "text": ("({text} || {text})", "upper({text})", "({int})::text"),
    "float": ("({float} + {float})", "({float} * {int})"),
    "bool": ("{int} > {int}", "{int} = {int}", "{int} <= {int}", "{int} IS DISTINCT FROM {int}", "{text} = {text}",
             "{text} > {text}", "{float} < {float}", "{text} IS NULL", "{text} LIKE '%o%'",
             "({bool} AND {bool})", "({bool} OR {bool})", "NOT ({bool})",
             "{text} IN ({text}, 'I love it', 'POSITIVE')", "{float} = ANY (ARRAY[{float}, 0.5])",
             "ROW({int}, {text}) < ROW({int}, {text})"),
}
ANY_KIND = ("CASE WHEN {bool} THEN {same} ELSE {same} END", "COALESCE({same}, {same})", "NULLIF({same}, {same})",
            "GREATEST({same}, {same})", "LEAST({same}, {same})")
VOLATILE = {"int": ("nextval('fz_seq')::int", "fz_log('{tag}', {int})"), "text": ("fz_log('{tag}', {text})",),
            "float": ("random()", "fz_log('{tag}', {float})"), "bool": ()}
# Expressions that fail for some rows ({kind column}: a column of that kind).
FAILING = {"int": ("({int} / {int column})", "({text column})::int"), "text": ("(({text column})::json ->> 'a')",),
           "float": ("({float} / {float column})", "sqrt({float column})"), "bool": ()}

CLAUDE = ("aws_bedrock.invoke_model('anthropic.claude-v2', 'application/json', 'application/json', "
          "json_build_object('prompt', E'\\n\\nHuman: ' || {t} || E'\\n\\nAssistant:', "
          "'max_tokens_to_sample', 12)::text)")


@dataclass(frozen=True)
class Scope:
    """What an expression drawn here may read and draw."""
    columns: tuple = ()         # (sql, kind)
    calls: bool = True          # calls of aws_ml
    exact: bool = False         # errors (see the module docstring)
    window_rows: tuple = ()     # window functions, over these columns

    def of_kind(self, kind):
        return [sql for sql, k in self.columns if k == kind]


@dataclass
class Statement:
    sql: str
    compare: str = "multiset"   # "ordered", "multiset", "status" (no rows) or "copy" (COPY TO's text)


@dataclass
class Case:
    statements: list
    settings: list = field(default_factory=list)
    writes: bool = False        # compare the tables afterwards
    parallel: bool = False
    fresh_session: bool = False

    def describe(self):
        lines = [f"SET {setting};" for setting in self.settings] + [s.sql + ";" for s in self.statements]
        return "\n".join(lines)


class Grammar:
    def __init__(self, draw, without=frozenset(), parallel=False):
        self.draw = draw
        self.without = set(without) | (NOT_PARALLEL if parallel else set())
        self.parallel = parallel
        self.names = 0
        self.calls = 0
        self.ctes = []
        self.ordered = False        # the statement's own query has ORDER BY

    # --- drawing ----------------------------------------------------------------

    def has(self, feature):
        return feature not in self.without

    def pick(self, options):
        return self.draw(st.sampled_from(list(options)))

    def chance(self, percent):
        """True about percent % of the time; shrinks to False."""
        return self.draw(st.integers(0, 99)) >= 100 - percent

    def volatile(self, scope):
        """Whether volatile expressions may be drawn in scope: without
        "volatile_below", only in the statement's own query, where no
        batching node reads ahead of them."""
        return self.has("volatile") and (scope.exact or self.has("volatile_below"))

    def name(self, prefix):
        self.names += 1
        return f"{prefix}{self.names}"

    # --- expressions --------------------------------------------------------------

    def expr(self, kind, scope, depth):
        """An expression of kind over scope; depth bounds its nesting."""
        options = 3 * self._leaves(kind, scope)
        if depth > 0:
            forms = FORMS[kind] + tuple(form.replace("{same}", "{" + kind + "}") for form in ANY_KIND)
            if self.volatile(scope):
                forms += VOLATILE[kind]
            if scope.exact and self.has("errors"):
                forms += tuple(form for form in FAILING[kind] if all(
                    scope.of_kind(k) for k in re.findall(r"\{(\w+) column\}", form)))
            options += [lambda s, d, form=form: self.render(form, s, d) for form in forms]
            if self.has("subquery"):
                options.append(lambda s, d: self.scalar_subquery(kind, s, d))
                if kind == "bool":
                    options.append(self.sublink)
            if self.has("window") and scope.window_rows and kind != "bool":
                options.append(lambda s, d: self.window_function(kind, s, d))
            if scope.calls:
                options += 2 * self._calls(kind)
        return self.pick(options)(scope, depth - 1)

    def render(self, form, scope, depth):
        """form with each {kind} an expression drawn, each {kind column} a
        column of scope, each {tag} a new name, left to right."""
        def fill(match):
            name, column = match.group(1), match.group(2)
            if name == "tag":
                return self.name("L")
            return self.pick(scope.of_kind(name)) if column else self.expr(name, scope, depth)
        return re.sub(r"\{(\w+)( column)?\}", fill, form)

    def _leaves(self, kind, scope):
        columns = scope.of_kind(kind)
        return ([lambda s, d: self.pick(columns)] if columns else []) + [lambda s, d: self.pick(LITERALS[kind])]

    def _calls(self, kind):
        """The calls that give a value of kind."""
        calls = {"int": [("sagemaker", self.call_echo), ("wrappers", self.call_classify_event)],
                 "text": [("comprehend", self.call_sentiment), ("bedrock", self.call_claude),
                          ("sagemaker", lambda s, d: f"({self.call_echo(s, d)})::text")],
                 "float": [("comprehend", self.call_confidence), ("sagemaker", self.call_linear_regression),
                           ("wrappers", self.call_regression_model), ("wrappers", self.call_analyze_company),
                           ("bedrock", self.call_titan)],
                 "bool": []}[kind]
        return [call for feature, call in calls if self.has(feature)]

    # --- calls --------------------------------------------------------------------

    def _called(self, sql):
        self.calls += 1
        return sql

    def arg(self, kind, scope, depth):
        """A call's argument: a column more often than not, so that rows differ."""
        columns = scope.of_kind(kind)
        if columns and self.chance(60):
            return self.pick(columns)
        return self.expr(kind, scope, depth)

    def max_rows(self, scope):
        """max_rows_per_batch: NULL, a constant, or (not a constant) a column's."""
        columns = scope.of_kind("int") if self.has("max_rows_column") else []
        return self.pick(("NULL", "3", "10", "1") + ((f"NULLIF({self.pick(columns)}, 0)",) if columns else ()))

    def comprehend_text(self, scope, depth):
        text = self.arg("text", scope, depth)
        return text if scope.exact else f"left({text}, 1000)"

    def call_sentiment(self, scope, depth):
        language = "'en'"
        if scope.exact and self.has("errors") and self.chance(20):
            language = f"CASE WHEN {self.expr('bool', scope, depth)} THEN NULL ELSE 'en' END"
        return self._called(f"(aws_comprehend.detect_sentiment({self.comprehend_text(scope, depth)}, {language}, "
                            f"{self.max_rows(scope)})).sentiment")

    def call_confidence(self, scope, depth):
        return self._called(f"(aws_comprehend.detect_sentiment({self.comprehend_text(scope, depth)}, 'en'))"
                            ".confidence::float8")

    def claude(self, scope, depth):
        text = self.arg("text", scope, depth)
        return CLAUDE.format(t=text if scope.exact else f"COALESCE({text}, '-')")

    def call_claude(self, scope, depth):
        return self._called(self.claude(scope, depth))

    def call_titan(self, scope, depth):
        text = self.arg("text", scope, depth)
        text = text if scope.exact else f"COALESCE(NULLIF({text}, ''), '-')"
        return self._called("(aws_bedrock.invoke_model_get_embeddings('amazon.titan-embed-text-v1', "
                            f"'application/json', 'embedding', json_build_object('inputText', {text})::text))"
                            f"[{self.pick(('1', '2', '1536'))}]::float8")

    def call_linear_regression(self, scope, depth):
        features = ", ".join(self.arg(self.pick(("float", "int")), scope, depth) for _ in range(4))
        return self._called(f"aws_sagemaker.invoke_endpoint('linear-regression', {self.max_rows(scope)}, {features})"
                            "::float8")

    def call_echo(self, scope, depth):
        inputs = ", ".join(self.arg(self.pick(("int", "text", "float")), scope, depth)
                           for _ in range(self.pick((1, 2, 3))))
        return self._called(f"aws_sagemaker.invoke_endpoint('echo-row-count', {self.max_rows(scope)}, {inputs})::int")

    def classify_event(self, scope, depth):
        """The reference's 4-argument classify_event: its answer is cast to INT,
        which a fraction fails (22P02), so the amount is whole unless errors may be drawn."""
        amount = self.expr("float", scope, depth)
        amount = amount if scope.exact else f"round({amount})"
        rows = f", {self.max_rows(scope)}" if self.chance(30) else ""
        return (f"classify_event({self.expr('int', scope, depth)}, date '1970-01-01' + "
                f"{self.expr('int', scope, depth)}, ({amount})::real{rows})")

    def call_classify_event(self, scope, depth):
        return self._called(self.classify_event(scope, depth))

    def call_regression_model(self, scope, depth):
        return self._called(f"regression_model(ARRAY[{self.expr('int', scope, depth)}, "
                            f"{self.expr('int', scope, depth)}, {self.expr('float', scope, depth)}]::real[])::float8")

    def call_analyze_company(self, scope, depth):
        return self._called(f"(analyze_company(({self.expr('float', scope, depth)})::numeric(18, 6), "
                            f"({self.expr('float', scope, depth)})::numeric(18, 6)))"
                            ".six_month_estimated_return::float8")

    # --- window functions and aggregates -------------------------------------------

    def window_function(self, kind, scope, depth):
        rows = Scope(columns=scope.window_rows, calls=scope.calls)
        partition = f"PARTITION BY {self.expr('int', rows, 1)} " if self.chance(50) else ""
        order = f"ORDER BY {self.expr(self.pick(('int', 'text', 'float')), rows, depth)}"
        frame = self.pick(("", " ROWS BETWEEN 1 PRECEDING AND CURRENT ROW",
                           " ROWS BETWEEN CURRENT ROW AND 2 FOLLOWING"))
        if kind == "int":
            function = self.pick(("row_number()", "rank()", "count(*)"))
        elif kind == "text":
            function = f"{self.pick(('lag', 'first_value', 'max'))}({self.expr('text', rows, depth)})"
        else:
            function = f"{self.pick(('sum', 'avg', 'last_value'))}({self.expr('float', rows, depth)})"
        return f"({function} OVER ({partition}{order}{frame}))::{CAST[kind]}"

    def aggregate(self, kind, rows, depth):
        """An aggregate over rows (no error drawn in its arguments or FILTER)."""
        rows = replace(rows, exact=False, window_rows=())
        filter_ = f" FILTER (WHERE {self.expr('bool', rows, depth)})" if self.chance(25) else ""
        if kind == "int":
            body = self.pick((
                lambda: "count(*)",
                lambda: f"count({self.expr(self.pick(('int', 'text', 'float')), rows, depth)})",
                lambda: f"count(DISTINCT {self.expr('text', rows, depth)})",
                lambda: f"sum({self.expr('int', rows, depth)})",
                lambda: f"max({self.expr('int', rows, depth)})",
            ))()
            return f"({body}{filter_})::int"
        if kind == "text":
            value = self.expr("text", rows, depth)
            options = [lambda: f"max({value})", lambda: f"string_agg({value}, ',' ORDER BY {value})",
                       lambda: f"string_agg(DISTINCT {value}, ',')"]
            if not self.parallel:
                options.append(lambda: f"string_agg({value}, ',' ORDER BY {self.expr('int', rows, depth)})")
            return f"{self.pick(options)()}{filter_}"
        value = self.expr("float", rows, depth)
        body = self.pick((lambda: f"sum({value})", lambda: f"max({value})", lambda: f"avg({value})",
                          lambda: f"percentile_disc(0.5) WITHIN GROUP (ORDER BY {value})"))()
        return f"{body}{filter_}"

    # --- subqueries in expressions ---------------------------------------------------

    def correlated(self, scope, depth):
        """A FROM for a subquery of an expression drawn in scope, the scope
        inside it (its own columns and, correlated, scope's plain columns),
        and the scope of its own columns only (for its aggregates, which
        would otherwise belong to the query outside)."""
        frm, columns, _ = self.from_clause(depth)
        own = Scope(columns=tuple(columns), calls=scope.calls)
        outside = tuple((sql, kind) for sql, kind in scope.columns if PLAIN_COLUMN.fullmatch(sql))
        return frm, replace(own, columns=own.columns + outside), own

    def scalar_subquery(self, kind, scope, depth):
        frm, inner, own = self.correlated(scope, depth)
        where = f" WHERE {self.expr('bool', inner, depth)}" if self.chance(70) else ""
        if kind in ("int", "bool") or self.chance(50):
            value = self.aggregate("int" if kind == "bool" else kind, own, depth)
            return f"(SELECT {value}{' > 0' if kind == 'bool' else ''} FROM {frm}{where})"
        return f"(SELECT {self.expr(kind, inner, depth)} FROM {frm}{where} ORDER BY 1 LIMIT 1)"

    def sublink(self, scope, depth):
        frm, inner, _ = self.correlated(scope, depth)
        where = f" WHERE {self.expr('bool', inner, depth)}" if self.chance(80) else ""
        limit = f" LIMIT {self.pick(('1', '2', '(SELECT 1)'))}" if self.has("limit") and self.chance(20) else ""
        form = self.pick(("EXISTS", "NOT EXISTS", "IN", "NOT IN", "= ANY", "> ALL"))
        if form.endswith("EXISTS"):
            return f"{form} (SELECT 1 FROM {frm}{where}{limit})"
        kind = "float" if form == "> ALL" else self.pick(("int", "text"))
        return (f"{self.expr(kind, scope, depth)} {form} "
                f"(SELECT {self.expr(kind, inner, depth)} FROM {frm}{where}{limit})")

    # --- FROM ---------------------------------------------------------------------------

    @staticmethod
    def columns_of(alias, output=OUTPUT):
        return [(f"{alias}.{name}", kind) for name, kind in output]

    def from_clause(self, depth, outer=(), nested=False):
        """(FROM item, its columns, whether it is one table). outer: columns of
        an enclosing query a subquery may read; nested: inside a join."""
        options = [self.table]
        if depth > 0:
            options.append(self.derived_table)
            if self.has("join"):
                options += [self.join, self.join]
            if self.has("lateral"):
                options += [self.lateral_function, self.lateral_subquery]
            if self.has("cte") and self.ctes:
                options.append(self.cte_reference)
        return self.pick(options)(depth, outer, nested)

    def table(self, depth, outer, nested):
        alias = self.name("t")
        return f"{self.pick(TABLES)} {alias}", self.columns_of(alias), True

    def derived_table(self, depth, outer, nested):
        alias = self.name("s")
        return f"({self.query(depth - 1, Scope(columns=outer))}) {alias}", self.columns_of(alias), False

    def cte_reference(self, depth, outer, nested):
        alias = self.name("c")
        return f"{self.pick(self.ctes)} {alias}", self.columns_of(alias), False

    def join(self, depth, outer, nested):
        left, left_columns, _ = self.from_clause(depth - 1, outer, nested=True)
        right, right_columns, _ = self.from_clause(depth - 1, outer, nested=True)
        columns = left_columns + right_columns
        kind = self.pick(("JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN", "CROSS JOIN"))
        if kind == "CROSS JOIN":
            return f"({left} CROSS JOIN {right})", columns, False
        key = self.pick(("g", "id"))
        condition = f"{alias_of(left_columns)}.{key} = {alias_of(right_columns)}.{key}"
        if kind != "FULL JOIN" and self.chance(50):
            condition += f" AND {self.expr('bool', Scope(columns=tuple(columns), calls=self.chance(60)), 1)}"
        return f"({left} {kind} {right} ON {condition})", columns, False

    def lateral_function(self, depth, outer, nested):
        """A function of aws_ml in FROM, reading the rows before it; the
        reference's "FROM support, aws_comprehend.detect_sentiment(feedback, 'en') s"
        among them."""
        left, left_columns, _ = self.from_clause(depth - 1, outer, nested=True)
        scope = Scope(columns=tuple(left_columns))
        alias = self.name("f")
        shape = self.pick(("sentiment", "echo", "classify_event", "claude"))
        if shape == "sentiment":
            function = f"aws_comprehend.detect_sentiment({self.comprehend_text(scope, 1)}, 'en')"
            output = (("sentiment", "text"), ("confidence", "float"))
        elif shape == "echo":
            function = f"aws_sagemaker.invoke_endpoint('echo-row-count', NULL, {self.expr('text', scope, 1)})"
            output = (("v", "text"),)
        elif shape == "classify_event":
            function = self.classify_event(scope, 1)
            output = (("v", "int"),)
        else:
            function = self.claude(scope, 1)
            output = (("v", "text"),)
        self.calls += 1
        ordinality = " WITH ORDINALITY" if self.chance(15) else ""
        names = ", ".join(name for name, _ in output) + (", n" if ordinality else "")
        item = f"{function}{ordinality} AS {alias}({names})"
        forms = ["CROSS JOIN LATERAL {f}", "LEFT JOIN LATERAL {f} ON true"] + [", {f}"] * (not nested)
        columns = left_columns + [(f"{alias}.{name}" + ("::float8" if name == "confidence" else ""), kind)
                                  for name, kind in output]
        joined = f"{left} {self.pick(forms).format(f=item)}"
        return (f"({joined})" if nested else joined), columns, False

    def lateral_subquery(self, depth, outer, nested):
        left, left_columns, _ = self.from_clause(depth - 1, outer, nested=True)
        alias = self.name("l")
        body = self.block(depth - 1, Scope(columns=tuple(left_columns) + tuple(outer)))
        form = self.pick(("CROSS JOIN LATERAL ({b}) {a}", "LEFT JOIN LATERAL ({b}) {a} ON true"))
        return f"({left} {form.format(b=body, a=alias)})", left_columns + self.columns_of(alias), False

    # --- queries --------------------------------------------------------------------

    def query(self, depth, outer=Scope(), exact=False, top=False):
        """A block, or a set operation of two (each branch of one at the top is exact)."""
        if self.has("setop") and depth > 0 and self.chance(15):
            operator = self.pick(("UNION ALL", "UNION", "INTERSECT", "EXCEPT", "INTERSECT ALL", "EXCEPT ALL"))
            left = self.block(depth - 1, outer, exact)
            right = self.block(depth - 1, outer, exact)
            return f"({left}) {operator} ({right}){self.order_and_limit(top)}"
        return self.block(depth, outer, exact, top)

    def block(self, depth, outer=Scope(), exact=False, top=False):
        """A SELECT of OUTPUT's columns. outer: the columns of enclosing queries it may read."""
        frm, columns, one_table = self.from_clause(depth, outer.columns)
        rows = Scope(columns=tuple(columns) + outer.columns, calls=self.chance(70))
        shape = self.pick(["plain"] + ["grouped"] * self.has("grouping") + ["window"] * self.has("window"))
        where = ""
        if self.chance(50):
            where_exact = exact and one_table and shape == "plain"
            where = f" WHERE {self.expr('bool', replace(rows, exact=where_exact), min(2, depth + 1))}"
        group_by = having = distinct = ""
        if shape == "grouped":
            select, group_by = self.grouping(rows, replace(rows, columns=tuple(columns)), depth)
            if self.chance(30):
                having = f" HAVING {self.expr('bool', select, 1)}"
        else:
            select = replace(rows, window_rows=rows.columns if shape == "window" else ())
            if self.chance(10):
                distinct = "DISTINCT "
            elif self.has("ties") and self.chance(5):  # the first row of each g: which one depends on row order
                distinct = "DISTINCT ON (2) "
        select = replace(select, exact=exact)
        items = [f"({self.expr(kind, select, min(self.pick((1, 2, 0)), depth + 1))})::{CAST[kind]} AS {name}"
                 for name, kind in OUTPUT]
        if self.chance(5):
            items[0] = f"generate_series(0, ({self.expr('int', select, 1)}) % 3) AS id"
        locking = ""
        if top and one_table and shape == "plain" and not distinct and self.chance(10):
            locking = " FOR UPDATE"
        order = self.order_and_limit(top, leading="2" if distinct.startswith("DISTINCT ON") else None)
        return f"SELECT {distinct}{', '.join(items)} FROM {frm}{where}{group_by}{having}{order}{locking}"

    def grouping(self, rows, own, depth):
        """The scope of a grouped block's select list (its keys over rows, and
        aggregates over its own columns: an aggregate of only outer columns
        would belong to the outer query) and its GROUP BY clause."""
        kinds = self.pick(((), ("int",), ("text",), ("int", "text")))
        keys = [(f"({self.expr(kind, rows, self.pick((0, 1)))})::{CAST[kind]}", kind) for kind in kinds]
        aggregates = [(self.aggregate(kind, own, min(self.pick((1, 2)), depth + 1)), kind)
                      for kind in ("int", "int", "text", "float", "float")]
        scope = Scope(columns=tuple(aggregates + keys), calls=rows.calls)
        if not keys:
            return scope, ""
        listed = ", ".join(key for key, _ in keys)
        return scope, " GROUP BY " + self.pick((listed, f"ROLLUP ({listed})", f"CUBE ({listed})",
                                                f"GROUPING SETS (({listed}), ())"))

    def order_and_limit(self, top, leading=None):
        """Any of ORDER BY output columns (leading first, if given), LIMIT, OFFSET."""
        clause = ""
        if self.chance(35 if top else 15):
            # without "ties", every column: rows of equal keys are equal rows
            columns = [self.pick("12345") for _ in range(self.pick((1, 5)))] if self.has("ties") else list("54321")
            clause += " ORDER BY " + ", ".join(([leading] if leading else []) + columns)
            self.ordered |= top
        if self.has("limit") and self.chance(30):
            clause += f" LIMIT {self.pick(('1', '3', '10', '30', '(SELECT 2)', '(SELECT 40)', 'ALL'))}"
        if self.has("limit") and self.chance(10):
            clause += f" OFFSET {self.pick(('1', '5', '(SELECT 3)'))}"
        return clause

    # --- statements -----------------------------------------------------------------

    def with_clause(self):
        if not self.has("cte") or not self.chance(25):
            return ""
        definitions = []
        recursive = False
        for _ in range(self.pick((1, 2))):
            name = self.name("cte")
            if self.chance(20):
                definitions.append(self.recursive_cte(name))
                recursive = True
            else:
                body = self.query(self.pick((0, 1)))
                definitions.append(f"{name} AS {self.pick(('', 'MATERIALIZED ', 'NOT MATERIALIZED '))}({body})")
            self.ctes.append(name)
        return f"WITH {'RECURSIVE ' * recursive}" + ", ".join(definitions) + " "

    def recursive_cte(self, name):
        """Rows of a block, then each again with a call over its body, up to id 4."""
        step = Scope(columns=tuple(self.columns_of("r")))
        return (f"{name}(id, g, body, x, y) AS (({self.block(0)}) UNION ALL SELECT r.id + 1, r.g, "
                f"({self.expr('text', step, 2)})::text, r.x, r.y FROM {name} r WHERE r.id < 4)")

    def top_query(self):
        """The statement's own query, with its WITH clause: its select list is exact."""
        self.ordered = False
        with_clause = self.with_clause()
        return with_clause + self.query(self.pick((1, 2, 0)), exact=True, top=True)

    def statements(self):
        """The statements of a case, and whether they write to the tables."""
        kinds = ["select"] * 6 + [kind for kind in ("cursor", "current_of", "dml", "loop", "prepared")
                                  if self.has(kind)]
        kind = self.pick(kinds)
        if kind == "select":
            query = self.top_query()
            return [Statement(query, "ordered" if self.ordered else "multiset")], False
        if kind == "cursor":
            return self.cursor(), False
        if kind == "current_of":
            return self.current_of(), True
        if kind == "dml":
            return self.dml(), True
        if kind == "loop":
            rows = self.pick((1, 2, 5, 1000))
            return [Statement(f"SELECT fz_loop($fz${self.top_query()}$fz$, {rows})", "ordered")], False
        query = self.top_query()
        compare = "ordered" if self.ordered else "multiset"
        return [Statement(f"PREPARE fz_p AS {query}", "status"), Statement("EXECUTE fz_p", compare),
                Statement("EXECUTE fz_p", compare), Statement("DEALLOCATE fz_p", "status")], False

    def fetches(self, count, scroll):
        """count moves of the cursor fz_c, declared with scroll ("SCROLL ",
        "NO SCROLL " or ""): backward too, unless it is declared without
        either and "implicit_scroll" is left out (PostgreSQL makes such a
        cursor scrollable when its plan can scan backward)."""
        moves = ["FETCH {n} FROM fz_c", "FETCH NEXT FROM fz_c", "MOVE {n} IN fz_c", "FETCH ALL FROM fz_c"]
        if scroll or self.has("implicit_scroll"):
            moves += ["FETCH BACKWARD {n} FROM fz_c", "FETCH PRIOR FROM fz_c", "FETCH ABSOLUTE {n} FROM fz_c",
                      "FETCH FIRST FROM fz_c"]
        statements = []
        for _ in range(count):
            move = self.pick(moves).format(n=self.pick((1, 2, 3, 10, 30)))
            statements.append(Statement(move, "status" if move.startswith("MOVE") else "ordered"))
        return statements

    def cursor(self):
        scroll = self.pick(("", "NO SCROLL ", "SCROLL "))
        hold = self.pick(("", "WITH HOLD "))
        query = self.top_query()
        return [Statement(f"DECLARE fz_c {scroll}CURSOR {hold}FOR {query}", "status"),
                *self.fetches(self.pick((1, 2, 3, 4)), scroll), Statement("CLOSE fz_c", "status")]

    def current_of(self):
        """A cursor over fz_a, and UPDATE or DELETE ... WHERE CURRENT OF it."""
        table = Scope(columns=tuple(self.columns_of("fz_a")), exact=True)
        where = f" WHERE {self.expr('bool', table, 2)}" if self.chance(50) else ""
        items = ", ".join(f"({self.expr(kind, table, self.pick((1, 2, 0)))})::{CAST[kind]}" for _, kind in OUTPUT)
        lock = " FOR UPDATE" if self.chance(30) else ""
        statements = [Statement(f"DECLARE fz_c CURSOR FOR SELECT {items} FROM fz_a{where}{lock}", "status")]
        for _ in range(self.pick((1, 2, 3))):
            statements += self.fetches(1, scroll="")
            if self.chance(70):
                statements.append(Statement(
                    f"UPDATE fz_a SET body = {self.expr('text', table, 2)}, x = {self.expr('float', table, 1)} "
                    "WHERE CURRENT OF fz_c RETURNING id, body, x"))
            else:
                statements.append(Statement("DELETE FROM fz_a WHERE CURRENT OF fz_c RETURNING id, body"))
        return statements + [Statement("CLOSE fz_c", "status")]

    def dml(self):
        """UPDATE (of fz_a or the partitioned fz_p, with a join or not), DELETE,
        INSERT ... SELECT (ON CONFLICT DO UPDATE too), MERGE, CREATE TABLE AS,
        COPY (query) TO."""
        table = Scope(columns=tuple(self.columns_of("t")), exact=True)
        target = self.pick(("fz_a", "fz_p"))
        shape = self.pick(("update", "delete", "insert", "create_table_as", "update_join", "upsert", "merge",
                           "copy"))
        if shape == "upsert":
            conflicting = Scope(columns=tuple(self.columns_of("fz_b") + self.columns_of("excluded")), exact=True)
            return [Statement(f"INSERT INTO fz_b SELECT * FROM ({self.top_query()}) s WHERE s.id IS NOT NULL "
                              f"ON CONFLICT (id) DO UPDATE SET body = {self.expr('text', conflicting, 2)} "
                              "RETURNING *")]
        if shape == "merge":
            both = Scope(columns=tuple(self.columns_of("t") + self.columns_of("s")), exact=True)
            matched = (f"WHEN MATCHED AND {self.expr('bool', both, 1)} THEN UPDATE SET body = "
                       f"{self.expr('text', both, 2)}")
            deleted = " WHEN MATCHED THEN DELETE" if self.chance(30) else ""
            source = Scope(columns=tuple(self.columns_of("s")), exact=True)
            inserted = f"WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.g, {self.expr('text', source, 1)}, s.x, s.y)"
            return [Statement(f"MERGE INTO {target} t USING ({self.query(1)}) s ON t.id = s.id {matched}{deleted} "
                              f"{inserted}", "status")]
        if shape == "copy":
            return [Statement(f"COPY ({self.top_query()}) TO STDOUT", "copy")]
        if shape == "update":
            where = f" WHERE {self.expr('bool', table, 2)}" if self.chance(70) else ""
            return [Statement(f"UPDATE {target} t SET body = {self.expr('text', table, 2)}, "
                              f"x = {self.expr('float', table, 2)}{where} RETURNING t.id, t.body, t.x")]
        if shape == "update_join":
            joined = Scope(columns=tuple(self.columns_of("t") + self.columns_of("u")))
            return [Statement(f"UPDATE {target} t SET body = {self.expr('text', joined, 2)} FROM fz_b u "
                              f"WHERE t.{self.pick(('g', 'id'))} = u.id AND {self.expr('bool', joined, 1)} "
                              "RETURNING t.id, t.body, u.id")]
        if shape == "delete":
            return [Statement(f"DELETE FROM {target} t WHERE {self.expr('bool', table, 2)} "
                              f"RETURNING t.id, {self.expr('text', table, 1)}")]
        if shape == "insert":
            return [Statement(f"INSERT INTO fz_sink {self.top_query()} RETURNING *")]
        return [Statement(f"CREATE TEMP TABLE fz_ctas AS {self.top_query()}", "status"),
                Statement("SELECT * FROM fz_ctas")]

    def settings(self):
        """Planner settings: a join strategy forced, and some others."""
        strategy = self.pick(((), ("enable_hashjoin = off", "enable_mergejoin = off"),
                              ("enable_nestloop = off", "enable_mergejoin = off"),
                              ("enable_nestloop = off", "enable_hashjoin = off")))
        others = [setting for setting in (
            "enable_seqscan = off", "enable_material = off", "enable_memoize = off", "enable_hashagg = off",
            "enable_sort = off", "work_mem = '64kB'", "aws_ml.max_concurrency = 1",
            "plan_cache_mode = force_generic_plan") if self.chance(12)]
        return list(strategy) + others


PARALLEL = ["force_parallel_mode = on", "parallel_setup_cost = 0", "parallel_tuple_cost = 0",
            "min_parallel_table_scan_size = 0", "max_parallel_workers_per_gather = 2"]
PLAIN_COLUMN = re.compile(r"[a-z]+[0-9]*\.[a-z]+")


def alias_of(columns):
    return columns[0][0].split(".")[0]


@st.composite
def cases(draw, without=frozenset()):
    """A Case: statements drawn from the grammar, with its settings."""
    parallel = "parallel" not in without and draw(st.integers(0, 99)) >= 85
    grammar = Grammar(draw, without, parallel)
    settings = grammar.settings() + (PARALLEL if parallel else [])
    statements, writes = grammar.statements()
    assume(grammar.calls > 0)
    fresh = grammar.has("fresh_session") and grammar.chance(12)
    return Case(statements, settings, writes, parallel, fresh)
