// Felix dashboard: polls /api/overview every second and updates the
// tables in place. Rows are keyed (streams by tenant/namespace/stream,
// services by tenant/namespace/service) so they keep their elements
// between refreshes; all text is set with textContent (names come from
// clients and are never parsed as HTML).
"use strict";

const POLL_MS = 1000;
// A poll that gets no answer within FETCH_TIMEOUT_MS is given up and the
// broker shown unreachable (a hung broker, or a network that dropped it,
// would otherwise leave the last answer on screen as if current).
const FETCH_TIMEOUT_MS = 5000;

const fmtInt = (v) => Number(v).toLocaleString("en-US");
const fmtRate = (v) => (v >= 100 ? Math.round(v).toLocaleString("en-US") : Number(v).toFixed(1));
const fmtPct = (v) => (100 * v).toFixed(1) + " %";

function fmtBytes(v) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(1)) + " " + units[i];
}

function fmtDuration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d > 0) return d + "d " + h + "h";
  if (h > 0) return h + "h " + m + "m";
  return m + "m " + (s % 60) + "s";
}

const key3 = (r, last) => r.tenant + "/" + r.namespace + "/" + r[last];

// A column: a CSS class naming it, how to read the raw value, how to show
// it, and optionally when to flag it.
const col = (cls, get, fmt, alert) => ({ cls, get, fmt: fmt || String, alert });

const tables = {
  streams: {
    key: (r) => key3(r, "stream"),
    attr: "data-stream",
    id: (k) => "stream:" + k,
    cols: [
      col("name text", (r) => key3(r, "stream")),
      col("durable text", (r) => (r.durable ? "yes" : "no")),
      col("published", (r) => r.published, fmtInt),
      col("publish-rate", (r) => r.publish_rate, fmtRate),
      col("delivered", (r) => r.delivered, fmtInt),
      col("deliver-rate", (r) => r.deliver_rate, fmtRate),
      col("dropped", (r) => r.dropped, fmtInt, (r) => r.dropped > 0),
      col("subscriptions", (r) => r.subscriptions, fmtInt),
      col("next-offset", (r) => r.next_offset, fmtInt),
    ],
  },
  subscribers: {
    key: (r) => String(r.id),
    attr: "data-subscriber",
    cols: [
      col("id text", (r) => r.id),
      col("stream text", (r) => key3(r, "stream")),
      col("policy text", (r) => r.policy),
      col("queue", (r) => r.queue_len, (v) => v, (r) => r.queue_len >= r.queue_cap),
      col("enqueued", (r) => r.enqueued, fmtInt),
      col("delivered", (r) => r.delivered, fmtInt),
      col("dropped", (r) => r.dropped, fmtInt, (r) => r.dropped > 0),
    ],
  },
  groups: {
    // '/' is in no name: "#" is, and stream "s#x" group "g" would read
    // as stream "s" group "x#g".
    key: (r) => key3(r, "stream") + "/" + r.group,
    attr: "data-group",
    cols: [
      col("stream text", (r) => key3(r, "stream")),
      col("group text", (r) => r.group),
      col("members", (r) => r.members, fmtInt),
      col("lag", (r) => r.lag, fmtInt),
      col("in-flight", (r) => r.in_flight, fmtInt),
      col("pending", (r) => r.pending, fmtInt),
      col("delivered", (r) => r.delivered, fmtInt),
      col("acked", (r) => r.acked, fmtInt),
      col("redelivered", (r) => r.redelivered, fmtInt),
      col("dead-lettered", (r) => r.dead_lettered, fmtInt, (r) => r.dead_lettered > 0),
    ],
  },
  caches: {
    key: (r) => key3(r, "cache"),
    attr: "data-cache",
    cols: [
      col("name text", (r) => key3(r, "cache")),
      col("hit-rate", (r) => r.hit_rate, fmtPct),
      col("hits", (r) => r.hits, fmtInt),
      col("misses", (r) => r.misses, fmtInt),
      col("entries", (r) => r.entries, fmtInt),
      col("bytes", (r) => r.bytes, fmtBytes),
      col("evictions", (r) => r.evictions, fmtInt),
      col("expirations", (r) => r.expirations, fmtInt),
    ],
  },
  services: {
    key: (r) => key3(r, "service"),
    attr: "data-service",
    cols: [
      col("name text", (r) => key3(r, "service")),
      col("responders", (r) => r.responders, fmtInt, (r) => r.responders === 0),
      col("in-flight", (r) => r.in_flight, fmtInt),
      col("requests", (r) => r.requests, fmtInt),
      col("request-rate", (r) => r.request_rate, fmtRate),
      col("replies", (r) => r.replies, fmtInt),
      col("responder-errors", (r) => r.responder_errors, fmtInt, (r) => r.responder_errors > 0),
      col("timeouts", (r) => r.timeouts, fmtInt, (r) => r.timeouts > 0),
      col("no-responders", (r) => r.no_responders, fmtInt, (r) => r.no_responders > 0),
      col("responder-gone", (r) => r.responder_gone, fmtInt, (r) => r.responder_gone > 0),
      col("abandoned", (r) => r.abandoned, fmtInt),
    ],
  },
};

// render makes the table's body hold exactly rows, in order, reusing the
// row element of each key (a key seen twice gets a row of its own).
function render(name, rows) {
  const t = tables[name];
  const body = document.querySelector("#" + name + " tbody");
  const old = new Map();
  for (const tr of body.children) old.set(tr.getAttribute(t.attr), tr);
  rows.forEach((r, i) => {
    const k = t.key(r);
    let tr = old.get(k);
    old.delete(k);
    if (!tr) {
      tr = document.createElement("tr");
      tr.setAttribute(t.attr, k);
      if (t.id) tr.id = t.id(k);
      for (const c of t.cols) {
        const td = document.createElement("td");
        td.className = c.cls;
        tr.appendChild(td);
      }
    }
    t.cols.forEach((c, j) => {
      const td = tr.children[j], v = c.get(r);
      td.dataset.value = String(v);
      td.textContent = c.fmt(v);
      td.classList.toggle("alert", Boolean(c.alert && c.alert(r)));
    });
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  // Rows 0..n-1 are in place: what follows is no longer in the list.
  while (body.children.length > rows.length) body.lastElementChild.remove();
}

function setText(id, text) { document.getElementById(id).textContent = text; }

function show(o) {
  const badge = document.getElementById("status");
  badge.textContent = o.status;
  badge.className = "badge " + o.status;
  setText("updated", "updated " + new Date(o.time).toLocaleTimeString());
  setText("uptime", fmtDuration(o.uptime_seconds));
  setText("conns-open", fmtInt(o.connections.open));
  setText("conns-total", fmtInt(o.connections.total));
  setText("subs-open", fmtInt(o.connections.subscriptions));
  setText("stream-count", fmtInt((o.streams || []).length));
  const disk = o.disk;
  document.getElementById("disk-card").hidden = !disk;
  if (disk) {
    const free = disk.free_bytes < 0 ? "–" : fmtBytes(disk.free_bytes);
    setText("disk", free + " (" + fmtBytes(disk.limit_bytes) + ")" + (disk.alarm ? " ALARM: durable writes refused" : ""));
    document.getElementById("disk").classList.toggle("alert", disk.alarm);
  }
  for (const name of Object.keys(tables)) render(name, o[name] || []);
  document.getElementById("truncated").hidden = !o.truncated;
}

async function poll() {
  try {
    const res = await fetch("api/overview", { cache: "no-store", signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!res.ok) throw new Error("HTTP " + res.status);
    show(await res.json());
  } catch (err) {
    const badge = document.getElementById("status");
    badge.textContent = "unreachable";
    badge.className = "badge down";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
