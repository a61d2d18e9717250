// edgevitals field reporter. The collector serves it after measure.js as
// /__edgevitals/rum.js, so real visitors' figures come from the same
// definitions as the lab's. It sets no cookie; a random id per tab (kept in
// sessionStorage, which dies with the tab) ties the page views of a visit
// together. It stays silent for visitors who ask not to be tracked (Global
// Privacy Control, Do Not Track) and in the edgevitals lab sampler.
//
// Context comes from the response headers, not from rewriting the page per
// hit: the edge sends
//   Server-Timing: edgevitals;desc="hit", edgevitals-release;desc="v42"
// which the navigation entry exposes as serverTiming.
//
// Keep it small (the served script stays under 6 KB) and free of regular
// expression literals and template strings: the collector strips comments
// with a scanner that knows only quotes.
(function (w) {
  'use strict';
  var ev = w && w.__edgevitals;
  if (!ev || w.edgevitals) {
    return;
  }
  var nav = w.navigator || {};
  var send = null;
  // Pages may call edgevitals.convert("goal") for goals without a page of
  // their own; it does nothing for visitors who are not measured.
  w.edgevitals = {
    convert: function (name) {
      if (send && typeof name === 'string' && name.length <= 64) {
        send({ conv: name });
      }
    },
  };
  if (nav.globalPrivacyControl || nav.doNotTrack === '1' || nav.doNotTrack === 'yes' || w.doNotTrack === '1' ||
    w.__edgevitalsLab || !nav.sendBeacon || !w.JSON) {
    return;
  }

  // The collector replaces the placeholder with the configured sample rate.
  var rate = +'__SAMPLE_RATE__';
  var chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  function newID() {
    var b = new Uint8Array(22);
    var s = '';
    var i;
    try {
      w.crypto.getRandomValues(b);
    } catch (e) {
      for (i = 0; i < b.length; i++) {
        b[i] = Math.random() * 256;
      }
    }
    for (i = 0; i < b.length; i++) {
      s += chars.charAt(b[i] & 63);
    }
    return s;
  }
  // A tab is sampled once: every page view of a sampled visit reports, so
  // conversions on later pages are counted against the right sessions.
  var key = 'edgevitals.sid';
  var sid = null;
  try {
    sid = w.sessionStorage.getItem(key);
  } catch (e) {
    // storage blocked: this page view is its own session
  }
  if (!sid || (sid !== '0' && (sid.length < 16 || sid.length > 32))) {
    sid = Math.random() < rate ? newID() : '0';
    try {
      w.sessionStorage.setItem(key, sid);
    } catch (e) {
      // as above
    }
  }
  if (sid === '0') {
    return;
  }

  var cache = 'unknown';
  var rel = '';
  try {
    var entry = performance.getEntriesByType('navigation')[0];
    ((entry && entry.serverTiming) || []).forEach(function (t) {
      if (t.name === 'edgevitals' && ['hit', 'stale', 'miss', 'pass', 'bypass'].indexOf(t.description) >= 0) {
        cache = t.description;
      } else if (t.name === 'edgevitals-release') {
        rel = String(t.description).slice(0, 128);
      }
    });
  } catch (e) {
    // no navigation timing: context unknown
  }

  var dev = 'desktop';
  var sc = w.screen || {};
  var fine = w.matchMedia && w.matchMedia('(pointer: fine)').matches;
  if (nav.userAgentData && nav.userAgentData.mobile) {
    dev = 'mobile';
  } else if (nav.maxTouchPoints > 0 && !fine) {
    dev = Math.min(sc.width || 0, sc.height || 0) < 600 ? 'mobile' : 'tablet';
  }

  send = function (o) {
    o.v = 1;
    o.sid = sid;
    o.path = String(w.location.pathname || '/').slice(0, 1024);
    o.dev = dev;
    o.cache = cache;
    if (rel) {
      o.rel = rel;
    }
    try {
      nav.sendBeacon('/__edgevitals/rum', JSON.stringify(o));
    } catch (e) {
      // a failing beacon must never break the page
    }
  };

  // Values beyond these are left out: the collector rejects them.
  var limits = { lcp: 6e4, fcp: 6e4, ttfb: 6e4, inp: 6e4, cls: 10 };
  ev.report(function (f) {
    var o = {};
    for (var k in limits) {
      var v = f[k];
      if (typeof v === 'number' && v >= 0 && v <= limits[k]) {
        o[k] = k === 'cls' ? Math.round(v * 1e4) / 1e4 : Math.round(v);
      }
    }
    send(o);
  });
})(typeof window !== 'undefined' ? window : null);
