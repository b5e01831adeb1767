"""schemathesis hooks for scripts/schemathesis (loaded through SCHEMATHESIS_HOOKS).

A client's Idempotency-Key names one request: a case that carries a well-formed key gets a
fresh one, so that two different generated bodies never share a key and meet the (correct)
`422 idempotency_key_reused` instead of the operation. A malformed key (empty, too long, not
printable ASCII) is kept as generated, and the API must refuse it with a 400.
"""

import re
import uuid

import schemathesis


WELL_FORMED = re.compile(r"[!-~]{1,255}")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    for name, value in list((case.headers or {}).items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and WELL_FORMED.fullmatch(value):
            case.headers[name] = uuid.uuid4().hex
