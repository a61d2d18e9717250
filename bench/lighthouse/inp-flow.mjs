#!/usr/bin/env node
// inp-flow.mjs: Lighthouse's INP for one click (or tap) on a page.
//
// Lighthouse's navigation mode never touches the page, so it has no INP. Its
// user-flow API does: a timespan step records a trace while we interact, and
// the step's report has the audit "interaction-to-next-paint". This script
// loads the page, starts a timespan, clicks (taps, on a mobile form factor)
// the selector, waits until the browser has reported the interaction, ends
// the timespan, and prints the step's report (a Lighthouse JSON report, the
// "LHR") on stdout and a one-line summary on stderr.
//
// It uses the Lighthouse install that ./test.sh makes, and the puppeteer-core
// and chrome-launcher that Lighthouse itself depends on, resolved from
// Lighthouse's own package, so nothing else is installed:
//
//   node bench/lighthouse/inp-flow.mjs \
//     --lighthouse ~/.cache/edgevitals-lighthouse/node_modules/lighthouse/cli/index.js \
//     --chrome-path /usr/bin/chromium --chrome-flags='--headless --no-sandbox' \
//     --form-factor mobile --cpu-slowdown 4 http://127.0.0.1:8080/inp
//
// vitals/lighthouse_test.go runs it with the sampler's Chromium flags and
// profiles. Chromium is launched the way Lighthouse's CLI launches it
// (chrome-launcher, its default flags, then --chrome-flags).

import {createRequire} from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import {pathToFileURL} from 'node:url';
import {parseArgs} from 'node:util';

// The Mobile and Desktop profiles of vitals/profile.go, which follow
// Lighthouse's own; each value can be overridden by a flag.
const formFactors = {
  mobile: {width: 412, height: 823, scale: 1.75, cpuSlowdown: 4},
  desktop: {width: 1350, height: 940, scale: 1, cpuSlowdown: 1},
};

const usage = `usage: inp-flow.mjs [flags] URL
  --lighthouse PATH     Lighthouse's cli/index.js or package dir (default $EDGEVITALS_LIGHTHOUSE)
  --chrome-path PATH    Chromium (default $CHROME_PATH, else /usr/bin/chromium)
  --chrome-flags=FLAGS  space-separated Chromium flags, as Lighthouse's CLI takes them (with =)
  --form-factor F       mobile (tap, touch, CPU 4x slower) or desktop (click); default desktop
  --width N --height N --scale X   the emulated viewport (default: the form factor's)
  --cpu-slowdown X      DevTools CPU throttling (default: the form factor's)
  --user-agent UA       emulated user agent (default: Chromium's own)
  --selector CSS        what to click (default #b)
  --timeout-ms N        how long to wait for the interaction to be reported (default 10000)`;

function fail(msg) {
  process.stderr.write(`inp-flow: ${msg}\n`);
  process.exit(2);
}

function number(name, v, fallback) {
  if (v === undefined) {
    return fallback;
  }
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    fail(`--${name}: want a positive number, got ${JSON.stringify(v)}`);
  }
  return n;
}

// lighthouseRoot finds the lighthouse package from its CLI (or a symlink to
// it, like node_modules/.bin/lighthouse) or its directory.
function lighthouseRoot(p) {
  let dir = fs.realpathSync(p);
  if (fs.statSync(dir).isFile()) {
    dir = path.dirname(dir);
  }
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'lighthouse') {
      return dir;
    }
    const up = path.dirname(dir);
    if (up === dir) {
      fail(`${p} is not inside a lighthouse package`);
    }
    dir = up;
  }
}

// esmEntry returns the ES module entry of a dependency of Lighthouse, the
// one Lighthouse itself imports (puppeteer-core ships CommonJS too).
function esmEntry(require, name) {
  const pkgPath = require.resolve(`${name}/package.json`);
  const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
  const dot = pkg.exports?.['.'];
  const rel = (typeof dot === 'object' && dot.import) || pkg.module || pkg.main;
  return pathToFileURL(path.join(path.dirname(pkgPath), rel)).href;
}

// withTimeout rejects when p has not settled within ms.
function withTimeout(p, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const {values: opt, positionals} = parseArgs({
  allowPositionals: true,
  options: {
    'lighthouse': {type: 'string', default: process.env.EDGEVITALS_LIGHTHOUSE},
    'chrome-path': {type: 'string', default: process.env.CHROME_PATH || '/usr/bin/chromium'},
    'chrome-flags': {type: 'string', default: ''},
    'form-factor': {type: 'string', default: 'desktop'},
    'width': {type: 'string'},
    'height': {type: 'string'},
    'scale': {type: 'string'},
    'cpu-slowdown': {type: 'string'},
    'user-agent': {type: 'string'},
    'selector': {type: 'string', default: '#b'},
    'timeout-ms': {type: 'string'},
    'help': {type: 'boolean'},
  },
});
if (opt.help) {
  process.stdout.write(usage + '\n');
  process.exit(0);
}
if (positionals.length !== 1) {
  fail(`want one URL, got ${positionals.length}\n${usage}`);
}
const url = positionals[0];
if (!opt.lighthouse) {
  fail('no Lighthouse: pass --lighthouse or set EDGEVITALS_LIGHTHOUSE (./test.sh installs it)');
}
const ff = formFactors[opt['form-factor']];
if (!ff) {
  fail(`--form-factor: want mobile or desktop, got ${JSON.stringify(opt['form-factor'])}`);
}
const mobile = opt['form-factor'] === 'mobile';
const screen = {
  mobile,
  width: number('width', opt.width, ff.width),
  height: number('height', opt.height, ff.height),
  deviceScaleFactor: number('scale', opt.scale, ff.scale),
  disabled: false,
};
const cpuSlowdown = number('cpu-slowdown', opt['cpu-slowdown'], ff.cpuSlowdown);
const waitMs = number('timeout-ms', opt['timeout-ms'], 10000);

const root = lighthouseRoot(opt.lighthouse);
const require = createRequire(path.join(root, 'package.json'));
const {startFlow} = await import(pathToFileURL(path.join(root, 'core/index.js')).href);
const {default: puppeteer} = await import(esmEntry(require, 'puppeteer-core'));
const chromeLauncher = await import(esmEntry(require, 'chrome-launcher'));

// Lighthouse's settings for the step. DevTools throttling slows the CPU as
// the sampler's mobile profile does; the network is not throttled (all
// zeros), as in the sampler's built-in profiles. "simulate", Lighthouse's
// default, has no INP at all.
const flags = {
  formFactor: mobile ? 'mobile' : 'desktop',
  screenEmulation: screen,
  emulatedUserAgent: opt['user-agent'] || false,
  throttlingMethod: 'devtools',
  throttling: {
    cpuSlowdownMultiplier: cpuSlowdown,
    requestLatencyMs: 0,
    downloadThroughputKbps: 0,
    uploadThroughputKbps: 0,
  },
  onlyCategories: ['performance'],
  logLevel: 'error',
};

const chrome = await chromeLauncher.launch({
  chromePath: opt['chrome-path'],
  chromeFlags: opt['chrome-flags'].split(/\s+/).filter(Boolean),
  logLevel: 'error',
});
let code = 1;
try {
  const browser = await puppeteer.connect({
    browserURL: `http://127.0.0.1:${chrome.port}`,
    defaultViewport: null,
    protocolTimeout: 60000,
  });
  const page = await browser.newPage();
  // The page loads in the profile it is measured in, as the sampler's does:
  // Lighthouse applies the same emulation again when the timespan starts.
  await page.setViewport({
    width: screen.width, height: screen.height, deviceScaleFactor: screen.deviceScaleFactor,
    isMobile: mobile, hasTouch: mobile,
  });
  if (opt['user-agent']) {
    await page.setUserAgent(opt['user-agent']);
  }
  await page.emulateCPUThrottling(cpuSlowdown > 1 ? cpuSlowdown : null);
  const res = await page.goto(url, {waitUntil: 'load', timeout: 30000});
  if (!res || res.status() >= 400) {
    throw new Error(`load ${url}: HTTP ${res ? res.status() : 'no response'}`);
  }
  const target = await page.waitForSelector(opt.selector, {timeout: 10000});

  const flow = await startFlow(page, {name: 'edgevitals INP', flags});
  await flow.startTimespan({name: `${mobile ? 'tap' : 'click'} ${opt.selector}`});
  // The page reports the interaction (an Event Timing entry for its click,
  // which a tap dispatches too) once the frame after it is presented; the
  // trace has Chromium's own record of it by then.
  await page.evaluate(() => {
    window.__inpFlow = new Promise((resolve) => {
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          if (e.name === 'click' && e.interactionId) {
            resolve(e.duration);
          }
        }
      }).observe({type: 'event', durationThreshold: 16, buffered: true});
    });
  });
  await (mobile ? target.tap() : target.click());
  const seen = await withTimeout(page.evaluate(() => window.__inpFlow), waitMs,
    `wait for the page to report the ${mobile ? 'tap' : 'click'}`);
  await flow.endTimespan();

  const result = await flow.createFlowResult();
  const lhr = result.steps[0].lhr;
  // A pipe's write is asynchronous: wait for it before process.exit.
  await new Promise((resolve, reject) => process.stdout.write(JSON.stringify(lhr) + '\n', (err) => err ? reject(err) : resolve()));
  const audit = (id) => {
    const a = lhr.audits[id];
    if (!a) {
      return 'not in the report';
    }
    return a.numericValue === undefined ? (a.errorMessage || a.scoreDisplayMode) : String(Math.round(a.numericValue * 10000) / 10000);
  };
  process.stderr.write(`inp-flow: lighthouse ${lhr.lighthouseVersion} ${opt['form-factor']} ${url}: ` +
    `INP ${audit('interaction-to-next-paint')} ms (the page's Event Timing: ${seen} ms), ` +
    `TBT ${audit('total-blocking-time')} ms, CLS ${audit('cumulative-layout-shift')}\n`);
  await browser.disconnect();
  code = 0;
} catch (err) {
  process.stderr.write(`inp-flow: ${err?.stack || err}\n`);
} finally {
  chrome.kill();
}
process.exit(code);
