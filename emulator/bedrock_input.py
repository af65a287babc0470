"""Checks of a Bedrock model's request body, refused in Bedrock's words:
"Malformed input request: #/key: ..." (a JSON schema's), or the model's own."""


class MalformedInput(ValueError):
    pass


class InvalidPrompt(ValueError):
    """A request the model refuses in words of its own, not the schema's."""


def require(body, *keys):
    for key in keys:
        if key not in body:
            raise MalformedInput(f"#: required key [{key}] not found")


def only(body, *allowed, where="#"):
    for key in body:
        if key not in allowed:
            raise MalformedInput(f"{where}: extraneous key [{key}] is not permitted")


def text(body, key, max_length=None, where="#"):
    value = body[key]
    if not isinstance(value, str):
        raise MalformedInput(f"{where}/{key}: expected type: String, found: {type(value).__name__}")
    if not value:
        raise MalformedInput(f"{where}/{key}: expected minLength: 1, actual: 0")
    if max_length is not None and len(value) > max_length:
        raise MalformedInput(f"{where}/{key}: expected maxLength: {max_length}, actual: {len(value)}")
    return value


def integer(body, key, least, most=None, default=None, where="#"):
    """body[key] (default when absent), an integer within [least, most]."""
    if key not in body:
        return default
    value = body[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise MalformedInput(f"{where}/{key}: {value!r} is not greater or equal to {least}")
    if most is not None and value > most:
        raise MalformedInput(f"{where}/{key}: {value!r} is not less or equal to {most}")
    return value


def number(body, key, least, most, where="#"):
    """Checks that body[key], if present, is a number within [least, most]."""
    if key in body:
        value = body[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not least <= value <= most:
            raise MalformedInput(f"{where}/{key}: {value!r} is not a number within [{least}, {most}]")


def one_of(body, key, choices, default=None, where="#"):
    value = body.get(key, default)
    if value not in choices:
        raise MalformedInput(f"{where}/{key}: {value} is not a valid enum value")
    return value


def boolean(body, key, where="#"):
    if key in body and not isinstance(body[key], bool):
        raise MalformedInput(f"{where}/{key}: expected type: Boolean, found: {type(body[key]).__name__}")


def strings(body, key, most=None, where="#"):
    """body[key], if present, a list of strings (of at most most)."""
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(each, str) for each in value):
        raise MalformedInput(f"{where}/{key}: expected type: JSONArray of String")
    if most is not None and len(value) > most:
        raise MalformedInput(f"{where}/{key}: expected maximum item count: {most}, found: {len(value)}")
    return value


def objects(body, key, required=False, where="#"):
    """body[key], a list of objects, at least one when required."""
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(each, dict) for each in value):
        raise MalformedInput(f"{where}/{key}: expected type: JSONArray of JSONObject")
    if required and not value:
        raise MalformedInput(f"{where}/{key}: expected minimum item count: 1, found: 0")
    return value


def obj(body, key, where="#"):
    """body[key], if present, an object; {} when absent."""
    value = body.get(key, {})
    if not isinstance(value, dict):
        raise MalformedInput(f"{where}/{key}: expected type: JSONObject, found: {type(value).__name__}")
    return value
