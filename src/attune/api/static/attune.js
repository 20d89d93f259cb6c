/*! Attune browser tracker. Load it, then:
 *    attune.init({host: "https://attune.example", writeKey: "atk_…"});
 *    attune.page();                                   // page_view with url, referrer, title
 *    attune.track("view", {item_id: "i42"});          // any event type; item_id/value lifted
 *    attune.identify("u123", {plan: "pro"});          // links this device to the user
 *  Calls made before the script loads are queued by the snippet (window.attune = []).
 *  Events are batched (up to 50, or 1 s) and flushed with sendBeacon when the page hides.
 *  The write key may only ingest, so it is safe in a page.
 */
(function (w, d) {
  "use strict";
  var ANON_KEY = "attune_aid", USER_KEY = "attune_uid";
  var cfg = { host: "", writeKey: "", flushMs: 1000, maxBatch: 50 };
  var queue = [], timer = null, ready = false;

  function uuid() {
    if (w.crypto && w.crypto.randomUUID) return w.crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 0x3) | 0x8).toString(16);
    });
  }
  function store(key, value) {
    try {
      if (value === undefined) return w.localStorage.getItem(key);
      if (value === null) w.localStorage.removeItem(key); else w.localStorage.setItem(key, value);
    } catch (e) { /* storage blocked: ids live for this page only */ }
    return value;
  }
  var anonymousId = store(ANON_KEY) || store(ANON_KEY, uuid());
  var userId = store(USER_KEY);
  var lastSession = null;

  function context() {
    var ctx = {
      user_agent: navigator.userAgent,
      page: { url: w.location.href, referrer: d.referrer || undefined, title: d.title || undefined },
      locale: navigator.language,
      screen: { width: w.screen && w.screen.width, height: w.screen && w.screen.height }
    };
    try { ctx.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { /* old browser */ }
    return ctx;
  }
  function base(type, properties) {
    var props = {}, ev = {
      event_id: uuid(), type: type, anonymous_id: anonymousId,
      timestamp: new Date().toISOString(), context: context()
    };
    if (userId) ev.user_id = userId;
    for (var k in properties || {}) {
      if (!Object.prototype.hasOwnProperty.call(properties, k)) continue;
      if (k === "item_id") ev.item_id = String(properties[k]);
      else if (k === "value" && typeof properties[k] === "number") ev.value = properties[k];
      else props[k] = properties[k];
    }
    if (Object.keys(props).length) ev.properties = props;
    return ev;
  }
  function endpoint() {
    return cfg.host.replace(/\/$/, "") + "/v1/events?key=" + encodeURIComponent(cfg.writeKey);
  }
  function flush(beacon) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (!ready || !queue.length) return;
    var batch = queue.splice(0, cfg.maxBatch);
    // text/plain keeps this a "simple" CORS request: no preflight round trip.
    var body = JSON.stringify({ events: batch });
    if (beacon && navigator.sendBeacon) {
      if (!navigator.sendBeacon(endpoint(), new Blob([body], { type: "text/plain" }))) queue = batch.concat(queue);
    } else {
      fetch(endpoint(), { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } })
        .then(function (r) { if (r.status >= 500 || r.status === 429) throw new Error(String(r.status)); })
        .catch(function () { queue = batch.concat(queue); schedule(cfg.flushMs * 5); });
    }
    if (queue.length) schedule(0);
  }
  function schedule(ms) { if (!timer) timer = setTimeout(function () { flush(false); }, ms); }
  function enqueue(ev) {
    queue.push(ev);
    if (queue.length >= cfg.maxBatch) flush(false); else schedule(cfg.flushMs);
  }

  var api = {
    init: function (options) {
      for (var k in options) if (Object.prototype.hasOwnProperty.call(options, k)) cfg[k] = options[k];
      if (!cfg.writeKey) throw new Error("attune.init: writeKey is required");
      ready = true;
      schedule(0);
    },
    page: function (properties) { enqueue(base("page_view", properties)); },
    track: function (type, properties) { enqueue(base(type, properties)); },
    identify: function (id, traits) {
      userId = store(USER_KEY, String(id));
      var ev = base("identify");
      if (traits) ev.traits = traits;
      enqueue(ev);
    },
    reset: function () { userId = store(USER_KEY, null); anonymousId = store(ANON_KEY, uuid()); },
    flush: function () { flush(false); },
    anonymousId: function () { return anonymousId; }
  };
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") flush(true); });
  w.addEventListener("pagehide", function () { flush(true); });

  var pending = Array.isArray(w.attune) ? w.attune : [];
  w.attune = api;
  for (var i = 0; i < pending.length; i++) {
    var call = pending[i];
    if (call && api[call[0]]) api[call[0]].apply(api, Array.prototype.slice.call(call, 1));
  }
})(window, document);
