#!/usr/bin/env python3
"""Writes wire/testdata/vectors/*.json from the felix-wire v1 spec.

Independent of the Go codec on purpose: the bytes come from Python's json
escaping rules matched to serde_json (compact, no HTML escaping) and from
struct.pack for binary layouts, so the Go tests cannot agree with themselves.
Run: python3 wire/testdata/gen_vectors.py
"""
import base64, json, os, struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors")
MAGIC = 0x464C5831

def frame(flags, payload):
    return struct.pack(">IHHI", MAGIC, 1, flags, len(payload)) + payload

def js(obj):
    # serde_json compact: no spaces, non-ASCII kept as UTF-8, only " \\ and
    # control characters escaped (\b \f \n \r \t short forms, others \u00xx).
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return s.encode("utf-8")

def b64(s):
    return base64.b64encode(s).decode()

def write(name, **v):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(dict(name=name, **v), f, indent=2)
        f.write("\n")

def jvec(name, obj):
    p = js(obj)
    write(name, payload_json=p.decode("utf-8"), payload_hex=p.hex(), frame_hex=frame(0, p).hex())

def names(*ss):
    return b"".join(struct.pack(">H", len(s.encode())) + s.encode() for s in ss)

def batch(payloads):
    return struct.pack(">I", len(payloads)) + b"".join(struct.pack(">I", len(p)) + p for p in payloads)

# JSON messages, fields in the reference's declaration order.
jvec("auth_legacy", {"type": "auth", "tenant_id": "acme", "token": "tok"})
jvec("auth_ok_known_flags", {"type": "auth_ok", "server_flags": 63})
jvec("publish_acked", {"type": "publish", "tenant_id": "t1", "namespace": "default", "stream": "orders",
                       "payload": b64(b"\x00\xff\x10"), "request_id": 42, "ack": "per_message"})
jvec("publish_batch", {"type": "publish_batch", "tenant_id": "t1", "namespace": "default", "stream": "orders",
                       "payloads": [b64(b"a"), b64(b""), b64(b"xyz")], "request_id": 18446744073709551615, "ack": "per_batch"})
jvec("publish_batch_no_ack", {"type": "publish_batch", "tenant_id": "t1", "namespace": "default", "stream": "s",
                              "payloads": [], "ack": "none"})
jvec("subscribe_offset", {"type": "subscribe", "tenant_id": "t1", "namespace": "default", "stream": "demo",
                          "subscription_id": 9, "start": {"offset": 100}})
jvec("subscribe_earliest", {"type": "subscribe", "tenant_id": "t1", "namespace": "default", "stream": "demo",
                            "start": "earliest"})
jvec("subscribed", {"type": "subscribed", "subscription_id": 1})
jvec("event_stream_hello", {"type": "event_stream_hello", "subscription_id": 1})
jvec("event_offset", {"type": "event", "tenant_id": "t1", "namespace": "default", "stream": "demo",
                      "payload": b64(b"hi"), "offset": 7})
jvec("event_batch", {"type": "event_batch", "tenant_id": "t1", "namespace": "default", "stream": "demo",
                     "payloads": [b64(b"a"), b64(b"bc")], "base_offset": 5})
jvec("cache_put_no_ttl", {"type": "cache_put", "tenant_id": "t1", "namespace": "default", "cache": "c",
                          "key": "k", "value": b64(b"v"), "request_id": 3, "ttl_ms": None})
jvec("cache_get_request_id", {"type": "cache_get", "tenant_id": "t1", "namespace": "default", "cache": "c",
                              "key": "k", "request_id": 4})
jvec("cache_value_miss", {"type": "cache_value", "tenant_id": "t1", "namespace": "default", "cache": "c",
                          "key": "k", "value": None, "request_id": 4})
jvec("cache_value_empty", {"type": "cache_value", "tenant_id": "t1", "namespace": "default", "cache": "c",
                           "key": "k", "value": ""})
jvec("cache_ok", {"type": "cache_ok", "request_id": 3})
jvec("publish_ok", {"type": "publish_ok", "request_id": 42})
jvec("publish_error", {"type": "publish_error", "request_id": 42,
                       "message": "stream not found: tenant=t1 namespace=default stream=x"})
jvec("subscribe_cursor_error", {"type": "subscribe_cursor_error", "reason": "in_future", "requested": 9999, "available": 0})
jvec("error_escapes", {"type": "error", "message": "q\" b\\ n\n t\t c\x01 f\x0c <&> é 🦀 /"})

# Felix cache extensions (capability 0x4000), appended after the reference's
# fields so a reference decoder (which ignores unknown fields) still parses
# the messages it knows.
jvec("ext_cache_put_cas", {"type": "cache_put", "tenant_id": "t1", "namespace": "default", "cache": "c",
                           "key": "k", "value": b64(b"v2"), "request_id": 8, "ttl_ms": 5000, "if_version": 3})
jvec("ext_cache_put_if_absent", {"type": "cache_put", "tenant_id": "t1", "namespace": "default", "cache": "c",
                                 "key": "k", "value": b64(b"v"), "request_id": 9, "ttl_ms": None, "if_absent": True})
jvec("ext_cache_ok_version", {"type": "cache_ok", "request_id": 8, "version": 4})
jvec("ext_cache_value_version", {"type": "cache_value", "tenant_id": "t1", "namespace": "default", "cache": "c",
                                 "key": "k", "value": b64(b"v2"), "request_id": 10, "version": 4})
jvec("ext_cache_error", {"type": "cache_error", "request_id": 9, "code": "condition_failed",
                         "message": "cache condition failed: key \"k\" is at version 4", "version": 4})
jvec("ext_cache_delete", {"type": "cache_delete", "tenant_id": "t1", "namespace": "default", "cache": "c",
                          "key": "k", "request_id": 11})
jvec("ext_cache_deleted", {"type": "cache_deleted", "request_id": 11, "deleted": True})
jvec("ext_cache_ttl", {"type": "cache_ttl", "tenant_id": "t1", "namespace": "default", "cache": "c",
                       "key": "k", "request_id": 12})
jvec("ext_cache_ttl_value", {"type": "cache_ttl_value", "request_id": 12, "found": True, "ttl_ms": 4200})
jvec("ext_cache_ttl_value_none", {"type": "cache_ttl_value", "request_id": 13, "found": False, "ttl_ms": None})
jvec("ext_cache_mget", {"type": "cache_mget", "tenant_id": "t1", "namespace": "default", "cache": "c",
                        "keys": ["a", "b"], "request_id": 14})
jvec("ext_cache_values", {"type": "cache_values", "request_id": 14, "values": [b64(b"x"), None]})
# cache_incr (same capability): delta and ttl_ms optional, value an i64.
jvec("ext_cache_incr", {"type": "cache_incr", "tenant_id": "t1", "namespace": "default", "cache": "c",
                        "key": "hits", "request_id": 15, "delta": -5, "ttl_ms": 60000})
jvec("ext_cache_incr_default", {"type": "cache_incr", "tenant_id": "t1", "namespace": "default", "cache": "c",
                                "key": "hits", "request_id": 16})
jvec("ext_cache_incr_value", {"type": "cache_incr_value", "request_id": 15, "value": -3, "version": 7})
jvec("ext_cache_error_not_integer", {"type": "cache_error", "request_id": 17, "code": "not_integer",
                                     "message": "cache value is not an integer or out of range: key \"name\""})
# cache_expire and cache_scan (same capability): ttl_ms an i64 (0 removes
# the expiry), prefix/cursor/limit optional, a page's cursor always written.
jvec("ext_cache_expire", {"type": "cache_expire", "tenant_id": "t1", "namespace": "default", "cache": "c",
                          "key": "session", "request_id": 18, "ttl_ms": 30000})
jvec("ext_cache_expire_persist", {"type": "cache_expire", "tenant_id": "t1", "namespace": "default", "cache": "c",
                                  "key": "session", "request_id": 19, "ttl_ms": 0})
jvec("ext_cache_expire_result", {"type": "cache_expire_result", "request_id": 18, "found": True, "version": 7})
jvec("ext_cache_expire_result_missing", {"type": "cache_expire_result", "request_id": 19, "found": False, "version": 0})
jvec("ext_cache_scan", {"type": "cache_scan", "tenant_id": "t1", "namespace": "default", "cache": "c",
                        "request_id": 20, "prefix": "user:", "cursor": "user:1", "limit": 2})
jvec("ext_cache_scan_start", {"type": "cache_scan", "tenant_id": "t1", "namespace": "default", "cache": "c",
                              "request_id": 21})
jvec("ext_cache_scan_page", {"type": "cache_scan_page", "request_id": 20, "keys": ["user:2", "user:\"3\""],
                             "cursor": "user:\"3\""})
jvec("ext_cache_scan_page_done", {"type": "cache_scan_page", "request_id": 21, "keys": [], "cursor": ""})

# In-memory offsets extension (capability 0x0800): offered with the
# reference's flags (63), granted back.
jvec("ext_auth_mem_offsets", {"type": "auth", "tenant_id": "t1", "token": "tok", "client_flags": 63 | 0x0800})
jvec("ext_auth_ok_mem_offsets", {"type": "auth_ok", "server_flags": 63 | 0x0800})

# Start-by-time extension (capability 0x0400): subscribe.start {"time_ms":N},
# N in unix milliseconds (here 2026-11-30T10:00:00Z).
jvec("ext_auth_start_time", {"type": "auth", "tenant_id": "t1", "token": "tok", "client_flags": 63 | 0x0400})
jvec("ext_auth_ok_start_time", {"type": "auth_ok", "server_flags": 63 | 0x0400})
jvec("ext_subscribe_time", {"type": "subscribe", "tenant_id": "t1", "namespace": "default", "stream": "demo",
                            "subscription_id": 9, "start": {"time_ms": 1796032800000}})
jvec("ext_subscribe_time_epoch", {"type": "subscribe", "tenant_id": "t1", "namespace": "default", "stream": "demo",
                                  "start": {"time_ms": 0}})

# Felix queue extension (capability 0x2000).
jvec("ext_queue_join", {"type": "queue_join", "tenant_id": "t1", "namespace": "default", "stream": "orders",
                        "group": "workers", "consumer": "w1", "prefetch": 16})
jvec("ext_queue_joined", {"type": "queue_joined", "group": "workers", "consumer": "w1", "prefetch": 16})
jvec("ext_queue_ack", {"type": "queue_ack", "offsets": [3, 4, 9], "request_id": 5})
jvec("ext_queue_nack", {"type": "queue_nack", "offset": 7, "delay_ms": 1000, "reason": "db busy", "request_id": 6})
jvec("ext_queue_ok", {"type": "queue_ok", "request_id": 5})
jvec("ext_queue_error", {"type": "queue_error", "request_id": 6, "code": "not_in_flight", "message": "offset 7 is not in flight for this consumer"})
jvec("ext_queue_stats", {"type": "queue_stats", "tenant_id": "t1", "namespace": "default", "stream": "orders",
                         "group": "workers", "request_id": 8})
jvec("ext_queue_stats_value", {"type": "queue_stats_value", "request_id": 8, "members": 2, "in_flight": 3, "pending": 1,
                               "lag": 40, "cursor": 100, "delivered": 70, "acked": 60, "nacked": 2, "redelivered": 4,
                               "timed_out": 1, "dead_lettered": 1})
jvec("ext_queue_stats_value_released", {"type": "queue_stats_value", "request_id": 8, "members": 2, "in_flight": 3,
                                        "pending": 1, "lag": 40, "cursor": 100, "delivered": 70, "acked": 60, "nacked": 2,
                                        "redelivered": 4, "timed_out": 1, "dead_lettered": 1, "released": 16, "lost": 0})
jvec("ext_queue_delete", {"type": "queue_delete", "tenant_id": "t1", "namespace": "default", "stream": "orders",
                          "group": "workers", "request_id": 9})
# Felix request/reply extension (capability 0x0200).
jvec("ext_auth_request", {"type": "auth", "tenant_id": "t1", "token": "tok", "client_flags": 63 | 0x0200})
jvec("ext_auth_ok_request", {"type": "auth_ok", "server_flags": 63 | 0x0200})
jvec("ext_serve", {"type": "serve", "tenant_id": "t1", "namespace": "default", "service": "time", "max_in_flight": 8})
jvec("ext_serve_default", {"type": "serve", "tenant_id": "t1", "namespace": "default", "service": "time"})
jvec("ext_serving", {"type": "serving"})
jvec("ext_service_request", {"type": "service_request", "request_id": 77, "payload": b64(b"now?")})
jvec("ext_service_reply", {"type": "service_reply", "request_id": 77, "payload": b64(b"\x00\xff")})
jvec("ext_service_error", {"type": "service_error", "request_id": 78, "message": "db down"})
jvec("ext_request", {"type": "request", "request_id": 5, "tenant_id": "t1", "namespace": "default", "service": "time",
                     "payload": b64(b"now?"), "timeout_ms": 250})
jvec("ext_request_default", {"type": "request", "request_id": 6, "tenant_id": "t1", "namespace": "default",
                             "service": "time", "payload": ""})
jvec("ext_reply", {"type": "reply", "request_id": 5, "payload": b64(b"12:00")})
jvec("ext_request_error", {"type": "request_error", "request_id": 6, "code": "no_responders",
                           "message": "no responders for t1/default/time"})
# Felix management extension (capability 0x0100): purge, flush.
jvec("ext_auth_purge", {"type": "auth", "tenant_id": "t1", "token": "tok", "client_flags": 63 | 0x0100})
jvec("ext_auth_ok_purge", {"type": "auth_ok", "server_flags": 63 | 0x0100})
jvec("ext_stream_purge", {"type": "stream_purge", "tenant_id": "t1", "namespace": "default", "stream": "orders",
                          "request_id": 12})
jvec("ext_stream_purged", {"type": "stream_purged", "request_id": 12, "purged": 4711, "offset": 9000})
jvec("ext_stream_error", {"type": "stream_error", "request_id": 13, "code": "not_found",
                          "message": "stream not found: t1/default/nope"})
jvec("ext_queue_join_start", {"type": "queue_join", "tenant_id": "t1", "namespace": "default", "stream": "orders",
                              "group": "audit", "start": "latest"})
jvec("ext_queue_join_start_time", {"type": "queue_join", "tenant_id": "t1", "namespace": "default",
                                   "stream": "orders", "group": "audit", "prefetch": 8,
                                   "start": {"time_ms": 1796083200000}})
jvec("ext_cache_flush", {"type": "cache_flush", "tenant_id": "t1", "namespace": "default", "cache": "sessions",
                         "request_id": 14})
jvec("ext_cache_flushed", {"type": "cache_flushed", "request_id": 14, "removed": 250})
qd = struct.pack(">I", 2) + struct.pack(">QHI", 7, 1, 5) + b"order" + struct.pack(">QHI", 8, 3, 0)
write("ext_queue_delivery", kind="queue_delivery", flags=0x40, deliveries=[
      {"offset": 7, "attempt": 1, "payload_hex": b"order".hex()}, {"offset": 8, "attempt": 3, "payload_hex": ""}],
      payload_hex=qd.hex(), frame_hex=frame(0x40, qd).hex())

# Binary layouts.
body = names("t1", "default", "demo") + batch([b"hello", b""])
write("binary_publish_batch", kind="binary_publish_batch", flags=1, tenant_id="t1", namespace="default",
      stream="demo", payloads_hex=["68656c6c6f", ""], payload_hex=body.hex(), frame_hex=frame(1, body).hex())
acked = struct.pack(">QB", 1, 1) + names("t1", "default", "demo") + batch([b"x"])
write("binary_publish_acked_per_message", kind="binary_acked_publish_batch", flags=9, request_id=1,
      ack_mode="per_message", tenant_id="t1", namespace="default", stream="demo", payloads_hex=["78"],
      payload_hex=acked.hex(), frame_hex=frame(9, acked).hex())
for name, flags, sub, base, ps in [
        ("event_batch_shared", 0x04, None, None, [b"hello"]),
        ("event_batch_shared_offsets", 0x24, None, 5, [b"a", b"bc"]),
        ("event_batch_per_sub", 0x02, 7, None, [b"one", b"two"]),
        ("event_batch_per_sub_offsets", 0x22, 7, 1000, [b""]),
        ("event_batch_shared_empty", 0x04, None, None, [])]:
    p = (struct.pack(">Q", sub) if sub is not None else b"") + \
        (struct.pack(">Q", base) if base is not None else b"") + batch(ps)
    v = dict(kind="binary_event_batch", flags=flags, payloads_hex=[x.hex() for x in ps],
             payload_hex=p.hex(), frame_hex=frame(flags, p).hex())
    if sub is not None: v["subscription_id"] = sub
    if base is not None: v["base_offset"] = base
    write(name, **v)
