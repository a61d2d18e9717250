// edgevitals measurement script: Core Web Vitals from the browser's own
// performance timeline. The lab sampler injects it before any page script
// runs and calls collect(); the field beacon includes the same file and calls
// report(send) so that lab and field numbers come from one definition.
//
// Definitions follow web.dev and Lighthouse:
//   - LCP: the last largest-contentful-paint entry before the first real input
//     or the page being hidden (what browsers do to finalise LCP).
//   - CLS: the largest session window of layout shifts (gap < 1 s, window
//     < 5 s). Shifts flagged hadRecentInput are still counted when no real
//     input happened before them: mobile emulation flags shifts in the first
//     ~500 ms of a load although nothing touched the page.
//   - FCP: the first-contentful-paint entry.
//   - TTFB: navigation responseStart minus activationStart (prerender).
//   - TBT: the sum of (duration - 50 ms) of long tasks after FCP, clipped at FCP.
//   - INP: the worst interaction (98th percentile beyond 50 interactions) of
//     event-timing and first-input entries grouped by interactionId.
// All times are milliseconds since navigation start; null means "not measured".
(function (root) {
  'use strict';
  if (!root || root.__edgevitals) {
    return;
  }
  var supported = (root.PerformanceObserver && PerformanceObserver.supportedEntryTypes) || [];
  var has = function (type) {
    return supported.indexOf(type) >= 0;
  };
  var st = {
    firstInput: null, // timeStamp of the first trusted pointer or key input
    lcpFinal: false,
    lcp: null,
    fcp: null,
    clsWindows: { value: 0, first: 0, last: 0, max: 0 },
    longTasks: [],
    lastLongTaskEnd: 0,
    interactions: {},
    interactionCount: 0,
  };

  function activationStart() {
    var nav = performance.getEntriesByType && performance.getEntriesByType('navigation')[0];
    return (nav && nav.activationStart) || 0;
  }

  function observe(type, fn, opts) {
    if (!has(type)) {
      return false;
    }
    try {
      var po = new PerformanceObserver(function (list) {
        list.getEntries().forEach(fn);
      });
      var o = { type: type, buffered: true };
      if (opts) {
        for (var k in opts) {
          o[k] = opts[k];
        }
      }
      po.observe(o);
      return true;
    } catch (e) {
      return false;
    }
  }

  function onInput(e) {
    if (!e.isTrusted) {
      return;
    }
    if (st.firstInput === null || e.timeStamp < st.firstInput) {
      st.firstInput = e.timeStamp;
    }
    st.lcpFinal = true;
  }
  ['pointerdown', 'mousedown', 'keydown', 'touchstart'].forEach(function (t) {
    root.addEventListener(t, onInput, { capture: true, passive: true });
  });
  function onHidden() {
    if (document.visibilityState === 'hidden') {
      st.lcpFinal = true;
    }
  }
  root.addEventListener('visibilitychange', onHidden, true);

  var lcpOK = observe('largest-contentful-paint', function (e) {
    if (st.lcpFinal && st.firstInput !== null && e.startTime >= st.firstInput) {
      return;
    }
    st.lcp = Math.max(e.startTime - activationStart(), 0);
  });

  var fcpOK = observe('paint', function (e) {
    if (e.name === 'first-contentful-paint') {
      st.fcp = Math.max(e.startTime - activationStart(), 0);
    }
  });

  var clsOK = observe('layout-shift', function (e) {
    if (e.hadRecentInput && st.firstInput !== null && e.startTime >= st.firstInput) {
      return;
    }
    var w = st.clsWindows;
    if (w.value > 0 && e.startTime - w.last < 1000 && e.startTime - w.first < 5000) {
      w.value += e.value;
    } else {
      w.value = e.value;
      w.first = e.startTime;
    }
    w.last = e.startTime;
    if (w.value > w.max) {
      w.max = w.value;
    }
  });

  var tbtOK = observe('longtask', function (e) {
    var end = e.startTime + e.duration;
    st.longTasks.push({ start: e.startTime, end: end });
    if (end > st.lastLongTaskEnd) {
      st.lastLongTaskEnd = end;
    }
  });

  function onEvent(e) {
    if (!e.interactionId) {
      return;
    }
    var id = e.interactionId;
    if (!(id in st.interactions)) {
      st.interactionCount++;
      st.interactions[id] = 0;
    }
    if (e.duration > st.interactions[id]) {
      st.interactions[id] = e.duration;
    }
  }
  var inpOK = observe('event', onEvent, { durationThreshold: 16 });
  observe('first-input', onEvent);

  function ttfb() {
    var nav = performance.getEntriesByType && performance.getEntriesByType('navigation')[0];
    if (!nav || !(nav.responseStart > 0)) {
      return null;
    }
    return Math.max(nav.responseStart - activationStart(), 0);
  }

  function tbt() {
    if (!tbtOK || st.fcp === null) {
      return null;
    }
    var sum = 0;
    st.longTasks.forEach(function (t) {
      var d = t.end - Math.max(t.start, st.fcp);
      if (d > 50) {
        sum += d - 50;
      }
    });
    return sum;
  }

  function inp() {
    if (!inpOK) {
      return null;
    }
    var d = [];
    for (var id in st.interactions) {
      d.push(st.interactions[id]);
    }
    if (d.length === 0) {
      return null;
    }
    d.sort(function (a, b) {
      return b - a;
    });
    return d[Math.min(d.length - 1, Math.floor(d.length / 50))];
  }

  // collect returns the current figures. It has no side effects, so it can
  // be called as often as wanted.
  function collect() {
    var now = performance.now();
    return {
      lcp: lcpOK ? st.lcp : null,
      fcp: fcpOK ? st.fcp : null,
      ttfb: ttfb(),
      cls: clsOK ? st.clsWindows.max : null,
      tbt: tbt(),
      inp: inp(),
      interactions: st.interactionCount,
      input: st.firstInput !== null,
      now: now,
      sinceLongTask: now - st.lastLongTaskEnd,
    };
  }

  // report calls send(collect()) once, when the page is hidden or unloaded:
  // the moment a field beacon must leave.
  function report(send) {
    var sent = false;
    function fire() {
      if (sent) {
        return;
      }
      sent = true;
      try {
        send(collect());
      } catch (e) {
        // a failing beacon must never break the page
      }
    }
    root.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'hidden') {
        fire();
      }
    }, true);
    root.addEventListener('pagehide', fire, true);
  }

  root.__edgevitals = { collect: collect, report: report };
})(typeof window !== 'undefined' ? window : null);
