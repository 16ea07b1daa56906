#!/usr/bin/env python3
"""openapi-check.py - every operation of the OpenAPI document, called

Usage: openapi-check.py API_URL ADMIN_TOKEN READONLY_TOKEN SIP_ADDR
                        SIPP SCENARIO_DIR WORK_DIR

Fetches the document the daemon serves (GET /v1/openapi.json), then calls
each of its operations once with a valid request and the admin token, in
the order of PLAN below (objects are created first, their ids fill the
path parameters of the later requests, deletions and the drain come
last).  For each operation it checks:
  - the status is one the document lists for the operation; for a JSON
    answer the body validates against the documented schema (the small
    JSON Schema validator below), for any answer the Content-Type is one
    documented;
  - without a token: 401 (listed, body an Error, WWW-Authenticate) unless
    the operation's security allows no token, then a listed status;
  - an admin operation with the readonly token: 403 (listed, an Error);
    a read operation with it: a listed status other than 403;
  - x-tollgate-role is "admin" exactly for the methods that write.
An operation of the document without a request in PLAN, or a request of
PLAN for an operation the document does not have, fails and is named.

SIPP and SCENARIO_DIR make the one live call (caller.xml from
127.0.6.31:5061; the gateway, gw.xml, is started by openapi.sh); SIP_ADDR
is tollgate's SIP address, for the failed digest answer that makes a
block.  Prints "ok"/"FAIL" lines and "N passed, M failed"; exits 1 on a
failure.
"""

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

API, ADMIN, RO, SIP_ADDR, SIPP, SCEN, WORK = sys.argv[1:8]

passed = 0
failed = 0


def ok(what):
    global passed
    passed += 1
    print("ok - " + what)


def fail(what):
    global failed
    failed += 1
    print("FAIL - " + what)


# ------------------------------------------------------------ validator

ANNOTATIONS = {"description", "examples", "default", "title", "summary",
               "deprecated", "readOnly", "writeOnly", "format"}
KEYWORDS = {"$ref", "type", "enum", "const", "properties", "required",
            "additionalProperties", "items", "minItems", "maxItems",
            "minLength", "maxLength", "pattern", "minimum", "maximum",
            "minProperties", "maxProperties", "oneOf", "anyOf",
            "allOf"} | ANNOTATIONS


def type_ok(v, t):
    if t == "null":
        return v is None
    if t == "boolean":
        return isinstance(v, bool)
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "string":
        return isinstance(v, str)
    if t == "array":
        return isinstance(v, list)
    if t == "object":
        return isinstance(v, dict)
    raise ValueError("unknown type " + t)


def resolve(doc, ref):
    if not ref.startswith("#/"):
        raise ValueError("only local $ref: " + ref)
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def validate(doc, schema, v, where="$"):
    """the errors of v against schema, as a list of strings"""
    errs = []
    unknown = set(schema) - KEYWORDS
    unknown = {k for k in unknown if not k.startswith("x-")}
    if unknown:
        return ["%s: schema keyword(s) %s not known to the validator"
                % (where, sorted(unknown))]
    if "$ref" in schema:
        errs += validate(doc, resolve(doc, schema["$ref"]), v, where)
    if "type" in schema:
        ts = schema["type"] if isinstance(schema["type"], list) \
            else [schema["type"]]
        if not any(type_ok(v, t) for t in ts):
            return errs + ["%s: %r is not of type %s" % (where, v, ts)]
    if "enum" in schema and v not in schema["enum"]:
        errs.append("%s: %r not in %s" % (where, v, schema["enum"]))
    if "const" in schema and v != schema["const"]:
        errs.append("%s: %r is not %r" % (where, v, schema["const"]))
    if isinstance(v, str):
        if len(v) < schema.get("minLength", 0):
            errs.append("%s: %r shorter than %d" % (where, v,
                                                   schema["minLength"]))
        if "maxLength" in schema and len(v) > schema["maxLength"]:
            errs.append("%s: %r longer than %d" % (where, v,
                                                  schema["maxLength"]))
        if "pattern" in schema and not re.search(schema["pattern"], v):
            errs.append("%s: %r does not match %s" % (where, v,
                                                     schema["pattern"]))
    if type_ok(v, "number"):
        if "minimum" in schema and v < schema["minimum"]:
            errs.append("%s: %r below %r" % (where, v, schema["minimum"]))
        if "maximum" in schema and v > schema["maximum"]:
            errs.append("%s: %r above %r" % (where, v, schema["maximum"]))
    if isinstance(v, list):
        if len(v) < schema.get("minItems", 0):
            errs.append("%s: fewer than %d items" % (where,
                                                     schema["minItems"]))
        if "maxItems" in schema and len(v) > schema["maxItems"]:
            errs.append("%s: more than %d items" % (where,
                                                    schema["maxItems"]))
        if "items" in schema:
            for i, item in enumerate(v):
                errs += validate(doc, schema["items"], item,
                                 "%s[%d]" % (where, i))
    if isinstance(v, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in v:
                errs.append("%s: required member %s missing" % (where, k))
        if len(v) < schema.get("minProperties", 0):
            errs.append("%s: fewer than %d members" % (where,
                                                       schema["minProperties"]))
        if "maxProperties" in schema and len(v) > schema["maxProperties"]:
            errs.append("%s: more than %d members" % (where,
                                                      schema["maxProperties"]))
        for k, item in v.items():
            if k in props:
                errs += validate(doc, props[k], item, "%s.%s" % (where, k))
            elif schema.get("additionalProperties") is False:
                errs.append("%s: member %s is not documented" % (where, k))
            elif isinstance(schema.get("additionalProperties"), dict):
                errs += validate(doc, schema["additionalProperties"], item,
                                 "%s.%s" % (where, k))
    for sub in schema.get("allOf", []):
        errs += validate(doc, sub, v, where)
    if "anyOf" in schema:
        if not any(not validate(doc, s, v, where) for s in schema["anyOf"]):
            errs.append("%s: %r matches none of anyOf" % (where, v))
    if "oneOf" in schema:
        n = sum(1 for s in schema["oneOf"] if not validate(doc, s, v, where))
        if n != 1:
            errs.append("%s: %r matches %d of oneOf, not 1" % (where, v, n))
    return errs


def validator_checks():
    """the validator refuses what it should (it must be able to fail)"""
    d = {"components": {"schemas": {"M": {"type": "string",
                                          "pattern": "^[0-9]+$"}}}}
    s = {"type": "object", "additionalProperties": False,
         "required": ["a"],
         "properties": {"a": {"$ref": "#/components/schemas/M"},
                        "b": {"type": ["integer", "null"], "minimum": 1},
                        "c": {"oneOf": [{"type": "string"},
                                        {"type": "null"}]}}}
    cases = [({"a": "12"}, True), ({"a": "12", "b": None, "c": "x"}, True),
             ({}, False), ({"a": "x"}, False), ({"a": "1", "z": 1}, False),
             ({"a": "1", "b": 0}, False), ({"a": "1", "b": True}, False),
             ({"a": "1", "c": 3}, False), ([], False)]
    for v, want in cases:
        got = not validate(d, s, v)
        if got != want:
            fail("validator: %r gave %s, want %s" % (v, got, want))
            return
    ok("validator accepts and refuses as it should")


# ----------------------------------------------------------------- HTTP

class NoRedirect(urllib.request.HTTPRedirectHandler):
    """a redirect is an answer to check, not to follow"""
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def call(method, path, token=ADMIN, body=None, ctype=None, headers=None):
    """(status, content type, body bytes, headers) of one request"""
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            ctype = ctype or "application/json"
        else:
            data = body.encode() if isinstance(body, str) else body
        h["Content-Type"] = ctype
    req = urllib.request.Request(API + path, data=data, method=method,
                                 headers=h)
    try:
        with OPENER.open(req, timeout=10) as r:
            ct = r.headers.get("Content-Type", "")
            if ct.startswith("text/event-stream"):
                # a stream never ends: its start, up to the hello event
                data = b""
                while b"event: hello\ndata:" not in data or \
                        not data.endswith(b"\n\n"):
                    line = r.readline()
                    if not line:
                        break
                    data += line
                return r.status, ct, data, r.headers
            return r.status, ct, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read(), \
            e.headers


def json_of(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return None


# ------------------------------------------------------------ the plan

state = {}          # ids and names of what the plan created
checked = set()     # operations called: "get /v1/calls/{id}"
DOC = None


def operation(key):
    m, p = key.split(" ", 1)
    item = DOC["paths"].get(p)
    if not item or m not in item:
        return None, None
    return item, item[m]


def media_schema(op, status, ctype):
    """the documented schema of an answer, or an error string"""
    resp = op.get("responses", {}).get(str(status))
    if resp is None:
        return None, "status %d is not documented (%s)" % (
            status, ", ".join(sorted(op.get("responses", {}))))
    if "$ref" in resp:
        resp = resolve(DOC, resp["$ref"])
    content = resp.get("content", {})
    mt = ctype.split(";")[0].strip().lower()
    if not content:
        return None, None
    if mt not in content:
        return None, "Content-Type %s is not documented for %d (%s)" % (
            mt, status, ", ".join(content))
    return content[mt].get("schema"), None


def check_answer(key, op, status, ctype, raw, what):
    """status documented, body valid; the JSON body or None"""
    schema, err = media_schema(op, status, ctype)
    if err:
        fail("%s %s: %s: %s" % (key, what, err, raw[:300]))
        return None
    body = None
    if ctype.startswith("application/json"):
        body = json_of(raw)
        if body is None:
            fail("%s %s: %d: not JSON: %r" % (key, what, status, raw[:200]))
            return None
        if schema is not None:
            errs = validate(DOC, schema, body)
            if errs:
                fail("%s %s: %d: the body does not match the document: %s"
                     % (key, what, status, "; ".join(errs[:5])))
                # what the plan creates next may still use its ids
                return body
    ok("%s %s: %d as documented" % (key, what, status))
    return body if body is not None else raw


def role_of(op):
    return op.get("x-tollgate-role")


def token_optional(op):
    sec = op.get("security", DOC.get("security", []))
    return any(not s for s in sec)


def run(key, path, body=None, ctype=None, headers=None, want=None):
    """one operation of the document: auth checks, then the request"""
    item, op = operation(key)
    if op is None:
        fail("%s: requested by the plan but not in the document" % key)
        return None
    checked.add(key)
    method = key.split(" ")[0].upper()

    # no token
    st, ct, raw, hd = call(method, path, None, body, ctype, headers)
    if token_optional(op):
        check_answer(key, op, st, ct, raw, "without a token")
    elif st != 401:
        fail("%s without a token: %d, want 401" % (key, st))
    elif not (hd.get("WWW-Authenticate") or "").startswith("Bearer"):
        fail("%s without a token: 401 without WWW-Authenticate" % key)
    else:
        check_answer(key, op, st, ct, raw, "without a token")

    # the readonly token
    if role_of(op) == "admin":
        st, ct, raw, hd = call(method, path, RO, body, ctype, headers)
        if st != 403:
            fail("%s with the readonly token: %d, want 403" % (key, st))
        else:
            check_answer(key, op, st, ct, raw, "with the readonly token")
    elif method == "GET":
        st, ct, raw, hd = call(method, path, RO, body, ctype, headers)
        if st == 403:
            fail("%s with the readonly token: 403 on a read" % key)
        else:
            check_answer(key, op, st, ct, raw, "with the readonly token")

    st, ct, raw, hd = call(method, path, ADMIN, body, ctype, headers)
    res = check_answer(key, op, st, ct, raw, "with the admin token")
    if want is not None and st != want:
        fail("%s: %d, want %d for this valid request: %s"
             % (key, st, want, raw[:300]))
        return None
    return res


def wait_for(what, fn, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    fail("timed out waiting for " + what)
    return None


def sip_bad_digest():
    """one INVITE with a digest answer of another realm: a failure that
    blocks the source (auth_fail_limit 1)"""
    host, port = SIP_ADDR.rsplit(":", 1)
    me = "127.0.6.34"
    msg = ("INVITE sip:4471@{h} SIP/2.0\r\n"
           "Via: SIP/2.0/UDP {me}:5090;branch=z9hG4bK-oa1;rport\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:intruder@{me}>;tag=oa1\r\n"
           "To: <sip:4471@{h}>\r\n"
           "Call-ID: openapi-block-1@{me}\r\n"
           "CSeq: 1 INVITE\r\n"
           "Contact: <sip:intruder@{me}:5090>\r\n"
           "Proxy-Authorization: Digest username=\"intruder\", "
           "realm=\"elsewhere\", nonce=\"0123456789abcdef\", "
           "uri=\"sip:4471@{h}\", response=\"00000000000000000000000000000000\", "
           "algorithm=MD5\r\n"
           "Content-Length: 0\r\n\r\n").format(h=SIP_ADDR, me=me)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((me, 5090))
        s.settimeout(0.5)
        s.sendto(msg.encode(), (host, int(port)))
        try:
            s.recvfrom(4096)
        except socket.timeout:
            pass
    finally:
        s.close()


def plan():
    """each operation once, in an order where what a request needs
    exists; returns the caller's process (ended by then)"""
    # the node, open and not
    run("get /v1/openapi.json", "/v1/openapi.json", want=200)
    run("get /v1/health", "/v1/health", want=200)
    hello = run("get /v1/events", "/v1/events", want=200)
    if not (isinstance(hello, bytes) and b"event: hello" in hello):
        fail("get /v1/events: no hello event: %r" % (hello,))
    run("get /ui", "/ui", want=308)
    page = run("get /ui/", "/ui/", want=200)
    if not (isinstance(page, bytes) and b"console.js" in page):
        fail("get /ui/: not the page: %r" % (page[:200],))
    run("get /ui/{file}", "/ui/console.js", want=200)
    run("get /ui/{file}", "/ui/nosuch.js", want=404)
    run("get /metrics", "/metrics", want=200)

    # rates, accounts, credit, limits
    r = run("post /v1/rates", "/v1/rates",
            {"rate_plan": "oaplan", "prefix": "", "price_per_minute": "0.60",
             "connect_fee": "0", "initial_increment": 1,
             "subsequent_increment": 1, "valid_from": "2020-01-01"},
            want=201)
    state["rate"] = r["id"] if r else 0
    state["plan"] = r["rate_plan_id"] if r else 0
    run("get /v1/rates", "/v1/rates?rate_plan_id=%d" % state["plan"],
        want=200)
    run("post /v1/rates/import", "/v1/rates/import?mode=merge",
        "rate_plan,prefix,price_per_minute,connect_fee,initial_increment,"
        "subsequent_increment,valid_from\n"
        "oaplan,4477,0.30,0,1,1,2020-01-01\n"
        "oaplan,4478,0.40,0.01,60,60,\n",
        ctype="text/csv", want=200)
    bad = run("post /v1/rates/import", "/v1/rates/import",
              "rate_plan,prefix,price_per_minute\noaplan,44x,0.30\n",
              ctype="text/csv", want=400)
    if bad and not (bad.get("errors") and bad["errors"][0].get("line") == 2):
        fail("post /v1/rates/import: the bad line is not named: %r" % bad)
    st, ct, raw, hd = call("GET", "/v1/rates?format=csv&rate_plan_id=%d"
                           % state["plan"])
    if st != 200 or not ct.startswith("text/csv") or b"4477" not in raw:
        fail("get /v1/rates?format=csv: %d %s %r" % (st, ct, raw[:200]))
    else:
        check_answer("get /v1/rates", operation("get /v1/rates")[1], st, ct,
                     raw, "as CSV")
    a = run("post /v1/accounts", "/v1/accounts",
            {"name": "oacaller", "currency": "EUR", "max_calls": 5,
             "rate_plan_id": state["plan"], "sip_username": "oacaller",
             "sip_password": "secret", "credit_limit": "0"}, want=201)
    state["acct"] = a["id"] if a else 0
    run("get /v1/accounts", "/v1/accounts?limit=10", want=200)
    run("get /v1/accounts/{id}", "/v1/accounts/%d" % state["acct"], want=200)
    run("patch /v1/accounts/{id}", "/v1/accounts/%d" % state["acct"],
        {"max_cps": 10, "status": "active"}, want=200)
    run("post /v1/accounts/{id}/credit",
        "/v1/accounts/%d/credit" % state["acct"],
        {"op": "add", "amount": "5.00"},
        headers={"Idempotency-Key": "openapi-check-1"}, want=200)
    run("get /v1/accounts/{id}/limits",
        "/v1/accounts/%d/limits" % state["acct"], want=200)
    run("patch /v1/accounts/{id}/limits",
        "/v1/accounts/%d/limits" % state["acct"],
        {"daily_spend_cap": "50.00", "allowed_prefixes": ["1900"]},
        want=200)
    run("post /v1/restricted_prefixes", "/v1/restricted_prefixes",
        {"prefix": "1999123", "description": "openapi check"}, want=201)
    run("get /v1/restricted_prefixes", "/v1/restricted_prefixes", want=200)

    # routing
    g = run("post /v1/gateways", "/v1/gateways",
            {"name": "oagw", "address": "127.0.6.33:5080",
             "transport": "udp"}, want=201)
    state["gw"] = g["id"] if g else 0
    run("get /v1/gateways", "/v1/gateways", want=200)
    run("get /v1/gateways/{gateway}", "/v1/gateways/oagw", want=200)
    rt = run("post /v1/routes", "/v1/routes",
             {"prefix": "4499", "gateway": "oagw", "position": 1,
              "mode": "static"}, want=201)
    state["route"] = rt["id"] if rt else 0
    run("get /v1/routes", "/v1/routes", want=200)
    nr = run("post /v1/number_rules", "/v1/number_rules",
             {"direction": "in", "rule": "match=0 national=44",
              "position": 5}, want=201)
    state["rule"] = nr["id"] if nr else 0
    run("get /v1/number_rules", "/v1/number_rules", want=200)
    run("post /v1/carriers/{name}/deck", "/v1/carriers/oacarrier/deck"
        "?preference=1",
        "prefix,price_per_minute,connect_fee,initial_increment,"
        "subsequent_increment,valid_from,valid_to\n"
        "44,0.0080,0,60,60,,\n4420,0.0065,0.01,1,1,2026-01-01T00:00:00Z,\n",
        ctype="text/csv", want=201)
    run("get /v1/carriers", "/v1/carriers", want=200)

    # a live call: the caller dials 4471 (the configuration's default
    # route, the gateway of openapi.sh)
    caller = subprocess.Popen(
        [SIPP, "-nostdin", "-i", "127.0.6.31", "-p", "5061",
         "-sf", SCEN + "/caller.xml", "-key", "account", "oacaller",
         "-s", "4471", "-m", "1", "-timeout", "20", "-timeout_error",
         SIP_ADDR], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=WORK)
    try:
        def confirmed():
            st, ct, raw, hd = call("GET", "/v1/calls?scope=local"
                                   "&state=confirmed")
            b = json_of(raw) if st == 200 else None
            return b["calls"][0]["id"] if b and b.get("calls") else None
        cid = wait_for("the call to be confirmed", confirmed)
        state["call"] = cid or "none"
        run("get /v1/calls", "/v1/calls?account=oacaller&limit=10",
            want=200)
        run("get /v1/calls/{id}", "/v1/calls/" + state["call"], want=200)
        run("delete /v1/calls/{id}", "/v1/calls/" + state["call"],
            want=200)
        try:
            caller.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fail("the caller did not end after DELETE /v1/calls/{id}")
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()

    # its CDR
    def settled():
        st, ct, raw, hd = call("GET", "/v1/cdrs?account=%d" % state["acct"])
        b = json_of(raw) if st == 200 else None
        return b and b.get("cdrs")
    wait_for("the call's CDR", settled)
    run("get /v1/cdrs", "/v1/cdrs?account=%d&from=2020-01-01&limit=5"
        % state["acct"], want=200)
    st, ct, raw, hd = call("GET", "/v1/cdrs?format=csv&account=%d"
                           % state["acct"])
    lines = raw.decode("utf-8", "replace").splitlines()
    if st != 200 or not ct.startswith("text/csv") or len(lines) < 2:
        fail("get /v1/cdrs?format=csv: %d %s %r" % (st, ct, raw[:200]))
    else:
        check_answer("get /v1/cdrs", operation("get /v1/cdrs")[1], st, ct,
                     raw, "as CSV")

    # a block: one failed digest answer from 127.0.6.34
    sip_bad_digest()

    def blocked():
        st, ct, raw, hd = call("GET", "/v1/blocks")
        b = json_of(raw) if st == 200 else None
        return b["blocks"][0]["id"] if b and b.get("blocks") else None
    state["block"] = wait_for("a block of 127.0.6.34", blocked, 5) or 0
    run("get /v1/blocks", "/v1/blocks?all=1", want=200)
    run("delete /v1/blocks/{id}", "/v1/blocks/%d" % state["block"],
        want=200)

    # deletions
    run("delete /v1/routes/{id}", "/v1/routes/%d" % state["route"], want=200)
    run("delete /v1/number_rules/{id}", "/v1/number_rules/%d"
        % state["rule"], want=200)
    run("delete /v1/gateways/{gateway}", "/v1/gateways/%d" % state["gw"],
        want=200)
    run("delete /v1/restricted_prefixes/{prefix}",
        "/v1/restricted_prefixes/1999123", want=200)
    run("delete /v1/rates/{id}", "/v1/rates/%d" % state["rate"], want=200)

    # last: the node drains and exits
    run("post /v1/node/drain", "/v1/node/drain", {}, want=202)


def doc_checks():
    """roles as the daemon decides them, every operation in the plan"""
    for p, item in DOC["paths"].items():
        for m, op in item.items():
            if m not in ("get", "post", "patch", "delete", "put", "head",
                         "options", "trace"):
                continue
            key = "%s %s" % (m, p)
            want = "read" if m == "get" else "admin"
            if role_of(op) != want:
                fail("%s: x-tollgate-role %r, the daemon's is %r"
                     % (key, role_of(op), want))
            if key not in checked:
                fail("%s: in the document but not called: add a request "
                     "for it to plan() of tests/api/openapi-check.py" % key)


def main():
    global DOC
    validator_checks()
    st, ct, raw, hd = call("GET", "/v1/openapi.json", token=None)
    DOC = json_of(raw) if st == 200 else None
    if not DOC or "paths" not in DOC:
        fail("GET /v1/openapi.json without a token: %d %r" % (st, raw[:200]))
    else:
        ok("GET /v1/openapi.json serves the document")
        plan()
        doc_checks()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
