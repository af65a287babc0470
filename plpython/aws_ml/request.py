"""The one path every AWS call takes: settings, the statement cache, the
client and its credentials, then the requests (transport.py)."""
import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, Hashable, Iterator, List, Optional, Protocol, Tuple, TypeVar

from . import backend, credentials, settings, stats, statement_cache, transport
from .errors import AwsMlError, at_ordinality
from .services import Service
from .transport import Params

Key = Tuple[Any, ...]  # an input's key in the statement cache (statement_cache.key), or in answers_retained()
Group = TypeVar("Group", bound=Hashable)
T = TypeVar("T")


class Slots(Protocol):
    """Where a call's outputs go, by the 0-based index of the row that asked: a list or a dict."""

    def __setitem__(self, index: int, output: Any) -> None: ...


_retained: Optional[Dict[Key, Any]] = None  # answers kept while answers_retained() is active


@contextlib.contextmanager
def answers_retained() -> Iterator[None]:
    """Within, every answer received is kept, whatever the statement cache
    keeps, and answers the same request again: batch mode asks again for the
    rows before one that failed (batch_rows), and must not send them twice."""
    global _retained
    _retained = {}
    try:
        yield
    finally:
        _retained = None


class Cache:
    """The statement cache (statement_cache.py) as one SQL call sees it: off,
    or bound to the current statement and to what shapes a request and its
    signature besides its parameters: region, endpoint and role. It keeps the
    answer to one input under scope (an operation that takes one input);
    operation names the call in the stats. Inputs whose answer may differ
    each time (varies: text generation) are kept only under
    aws_ml.statement_cache = always, or while answers_retained()."""

    def __init__(self, current: settings.Settings, service: Service, operation: str, scope: Optional[str] = None,
                 varies: bool = False) -> None:
        self.on = current.statement_cache == "always" or (current.statement_cache == "on" and not varies)
        self.retained = _retained
        self.service, self.operation = service, operation
        self._current, self._scope_operation = current, scope or operation
        self._scope: Optional[Key] = None
        self.statement = backend.call_state().statement if self.on else None

    def key(self, params: Params) -> Optional[Key]:
        """The key of the input params, or None: not kept."""
        if not self.on and self.retained is None:
            return None
        if self._scope is None:  # the region only once there is something to send
            current, service = self._current, self.service
            self._scope = (service.client_name, self._scope_operation, current.resolved_region(),
                           current.endpoint_for(service), current.role_for(service))
        return statement_cache.key(self._scope, params)

    def key_at(self, params: Params, ordinality: int) -> Optional[Key]:
        """The key of the input params at ordinality of a call: answers that
        may differ each time are kept for their position only."""
        key = self.key(params)
        return key if self.on or key is None else (key, ordinality)

    def lookup(self, key: Optional[Key], items: int = 1) -> Any:
        if key is None:
            return None
        value = statement_cache.lookup(self.statement, key) if self.on else None
        if value is None and self.retained is not None:
            value = self.retained.get(key)
        if value is not None:
            stats.record_cache_hit(self.service.setting, self.operation, items)
        return value

    def store(self, key: Optional[Key], value: Any) -> None:
        """Keeps value; may run on a worker thread."""
        if key is None:
            return
        if self.on:
            statement_cache.store(self.statement, key, value)
        if self.retained is not None:
            self.retained[key] = value


@dataclass
class Input:
    """One distinct input of a call: its cache key, what its request carries,
    and the positions (0-based) of the call's rows that asked for it."""
    key: Optional[Key]
    value: Any = None
    indexes: List[int] = field(default_factory=list)


class Unanswered(Generic[Group]):
    """The inputs of one call the statement cache did not answer, by group
    (what must share a request: language, endpoint, rows a request), each
    distinct input once whatever group asked for it first, as row by row
    sends it once a statement. An uncached input (key None) is its own."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.groups: Dict[Group, List[Input]] = {}  # in order of first appearance
        self._by_key: Dict[Key, Input] = {}

    def ask(self, group: Group, params: Params, index: int, value: Any = None) -> Any:
        """The statement cache's answer to the input params at index, else
        None, and the input is added to group (value: what its request
        carries)."""
        key = self.cache.key_at(params, index)
        cached = self.cache.lookup(key)
        if cached is None:
            self.add(group, key, index, value)
        return cached

    def add(self, group: Group, key: Optional[Key], index: int, value: Any = None) -> None:
        pending = self._by_key.get(key) if key is not None else None
        if pending is None:
            pending = Input(key, value)
            self.groups.setdefault(group, []).append(pending)
            if key is not None:
                self._by_key[key] = pending
        pending.indexes.append(index)

    def send(self, requests: "Requests", results: Slots, split: Callable[[Group, List[Input]], List[List[Input]]],
             request_of: Callable[[Group, List[Input]], Tuple[Params, int]],
             outputs_of: Callable[[Group, List[Input], Any], Dict[int, Any]],
             kept: Optional[Callable[[Any], Any]] = None,
             max_concurrency: Optional[int] = None) -> List[Tuple[List[Input], Any]]:
        """Sends these inputs with requests and puts each output in results
        (a list or a dict) at every index that asked for its input; returns
        (inputs, answer) per request. split(group, inputs): the parts of a
        group's inputs that share one request; request_of(group, inputs): its
        (params, items); outputs_of(group, inputs, answer): {position in
        inputs: output}, run on the worker thread as the answer arrives,
        each output kept in the statement cache then (as kept(output) when
        given). A failed request is raised naming its rows (indexes + 1)."""
        parts = [(group, part) for group, inputs in self.groups.items() for part in split(group, inputs)]
        outputs: Dict[int, Dict[int, Any]] = {}

        def keep(number: int, answer: Any) -> None:
            group, inputs = parts[number - 1]
            outputs[number] = outputs_of(group, inputs, answer)
            for position, output in outputs[number].items():
                self.cache.store(inputs[position].key, kept(output) if kept else output)
        try:
            answers = requests.send_all([request_of(group, inputs) for group, inputs in parts],
                                        max_concurrency=max_concurrency, keep=keep)
        except AwsMlError as error:
            if error.ordinality is None:  # before any request: the client (no region, no role's credentials)
                raise
            rows = sorted(same.indexes[0] + 1 for same in parts[error.ordinality - 1][1])
            raise at_ordinality(error, rows[0], rows) from None
        for number, (_, inputs) in enumerate(parts, 1):
            for position, output in outputs[number].items():
                for index in inputs[position].indexes:
                    results[index] = output
        return [(inputs, answer) for (_, inputs), answer in zip(parts, answers)]


class Requests:
    """The requests of one SQL call to operation of service, under the
    settings of the moment."""

    def __init__(self, service: Service, operation: str, varies: bool = False) -> None:
        self.current = settings.current()
        self.service, self.operation = service, operation
        self.cache = Cache(self.current, service, operation, varies=varies)

    def cache_of(self, scope: str) -> Cache:
        """The statement cache of single inputs to operation scope, with this
        call's stats (a batch operation keeps its documents as the single one would)."""
        return Cache(self.current, self.service, self.operation, scope)

    def client(self) -> Any:
        return credentials.client_for(self.service, self.current)

    def send(self, items: int = 1, **params: Any) -> Dict[str, Any]:
        """One request; returns the answer."""
        return transport.send(self.service, self.operation, self.client(), items, **params)

    def cached(self, params: Params, fetch: Callable[[], T]) -> T:
        """The statement cache's answer to params, else fetch() (kept)."""
        key = self.cache.key(params)
        value = self.cache.lookup(key)
        if value is None:
            value = fetch()
            self.cache.store(key, value)
        return value

    def send_all(self, requests: List[Tuple[Params, int]], decode: Optional[Callable[[Any], Any]] = None,
                 max_concurrency: Optional[int] = None, keep: Optional[Callable[[int, Any], None]] = None) -> List[Any]:
        """transport.send_all of requests, with at most max_concurrency
        (default aws_ml.max_concurrency) in flight; nothing to send needs no client."""
        if not requests:
            return []
        return transport.send_all(self.service, self.operation, self.client(), requests,
                                  max_concurrency or self.current.max_concurrency, decode, keep)

    def send_each(self, inputs: Dict[int, Params], decode: Callable[[Dict[str, Any]], T],
                  max_concurrency: Optional[int] = None) -> Dict[int, T]:
        """{ordinality: decode(answer)} for inputs ({ordinality: params}, one
        request each); identical inputs (in the batch or earlier in the
        statement) are sent once. A failure is raised naming the first
        ordinality of its input."""
        outputs: Dict[int, T] = {}
        unanswered: Unanswered[None] = Unanswered(self.cache)
        for ordinality, params in inputs.items():
            cached = unanswered.ask(None, params, ordinality - 1, params)
            if cached is not None:
                outputs[ordinality] = decode(cached)
        sent: Dict[int, Any] = {}  # index -> (answer, decode(answer))
        unanswered.send(self, sent, lambda _, pending: [[same] for same in pending],
                        lambda _, one: (one[0].value, 1), lambda _, one, answer: {0: (answer, decode(answer))},
                        kept=lambda output: output[0], max_concurrency=max_concurrency)
        outputs.update((index + 1, decoded) for index, (_, decoded) in sent.items())
        return outputs


def call(service: Service, operation: str, items: int = 1, varies: bool = False, **params: Any) -> Dict[str, Any]:
    """Calls operation of service once under the current settings; an
    identical request earlier in the statement is answered from the
    statement cache."""
    requests = Requests(service, operation, varies)
    return requests.cached(params, lambda: requests.send(items, **params))
