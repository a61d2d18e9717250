// Summarizes cache-tests results: per cache, how many tests of each kind
// (required, optimal, check) passed and failed, and which required tests a
// chosen cache failed. Results are classified the way the suite's own
// results page does (test-engine/lib/results.mjs, lib/display.mjs in
// releases up to 0.4.x): a setup failure or a failed dependency is not
// counted against the cache.
//
// usage: node summarize.mjs SUITE_DIR [-detail NAME] NAME=results.json...
//
// Standard library only; test definitions are imported from the suite.

import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

function usage (msg) {
  if (msg) console.error(`summarize: ${msg}`)
  console.error('usage: node summarize.mjs SUITE_DIR [-detail NAME] NAME=results.json...')
  process.exit(2)
}

const args = process.argv.slice(2)
if (args.length < 2) usage()
const suiteDir = path.resolve(args.shift())
const details = []
const inputs = []
while (args.length) {
  const a = args.shift()
  if (a === '-detail') {
    if (!args.length) usage('-detail needs a cache name')
    details.push(args.shift())
    continue
  }
  const eq = a.indexOf('=')
  if (eq <= 0) usage(`not NAME=FILE: ${a}`)
  inputs.push([a.slice(0, eq), a.slice(eq + 1)])
}

// loadTests returns a Map from test id to its definition, from tests/index.mjs
// and any other suite file under tests/ (0.4.x releases add
// surrogate-control.mjs in the CLI rather than in the index).
async function loadTests (dir) {
  const testsDir = path.join(dir, 'tests')
  if (!fs.existsSync(path.join(testsDir, 'index.mjs'))) {
    throw new Error(`${testsDir}/index.mjs not found: is ${dir} a cache-tests checkout?`)
  }
  const byId = new Map()
  const add = suite => {
    if (!suite || !Array.isArray(suite.tests)) return
    for (const t of suite.tests) {
      // the CLI skips browser-only tests, as it tests a proxy
      if (!t || t.id === undefined || t.browser_only === true || byId.has(t.id)) continue
      byId.set(t.id, { ...t, suite: suite.id })
    }
  }
  const index = await import(pathToFileURL(path.join(testsDir, 'index.mjs')).href)
  for (const suite of index.default || []) add(suite)
  for (const f of fs.readdirSync(testsDir).sort()) {
    if (!f.endsWith('.mjs') || f === 'index.mjs') continue
    try {
      const mod = await import(pathToFileURL(path.join(testsDir, f)).href)
      add(mod.default)
    } catch (err) {
      console.error(`summarize: skipping tests/${f}: ${err.message}`)
    }
  }
  return byId
}

// readResults parses the CLI's stdout: a JSON object from test id to true or
// [errorName, message].
function readResults (file) {
  const text = fs.readFileSync(file, 'utf8')
  const start = text.indexOf('{')
  const end = text.lastIndexOf('}')
  if (start < 0 || end < start) throw new Error(`${file}: no JSON object in the CLI output`)
  return JSON.parse(text.slice(start, end + 1))
}

// classify mirrors determineTestResult of the suite.
function classify (tests, results, id, seen = new Set()) {
  const test = tests.get(id)
  const result = results[id]
  if (result === undefined) return 'untested'
  if (test && Array.isArray(test.depends_on) && !seen.has(id)) {
    seen.add(id)
    for (const dep of test.depends_on) {
      const c = classify(tests, results, dep, seen)
      if (c !== 'pass' && c !== 'yes') return 'dependency_fail'
    }
  }
  if (Array.isArray(result) && result[0] === 'Setup') {
    return result[1] === 'retry' ? 'retry' : 'setup_fail'
  }
  const kind = (test && test.kind) || 'required'
  if (kind === 'check') return result === true ? 'yes' : 'no'
  if (kind === 'optimal') return result === true ? 'pass' : 'optional_fail'
  return result === true ? 'pass' : 'fail'
}

function summarize (tests, results) {
  const s = {
    required: { pass: 0, fail: 0 },
    optimal: { pass: 0, fail: 0 },
    check: { yes: 0, no: 0 },
    setup: 0,
    dependency: 0,
    untested: 0,
    failedRequired: [],
    failedOptimal: []
  }
  for (const [id, test] of tests) {
    const kind = test.kind || 'required'
    const c = classify(tests, results, id)
    switch (c) {
      case 'pass':
        s[kind === 'optimal' ? 'optimal' : 'required'].pass++
        break
      case 'fail':
        s.required.fail++
        s.failedRequired.push([id, test.name, results[id]])
        break
      case 'optional_fail':
        s.optimal.fail++
        s.failedOptimal.push([id, test.name, results[id]])
        break
      case 'yes': s.check.yes++; break
      case 'no': s.check.no++; break
      case 'dependency_fail': s.dependency++; break
      case 'untested': s.untested++; break
      default: s.setup++
    }
  }
  s.score = s.required.pass + s.optimal.pass
  return s
}

const tests = await loadTests(suiteDir)
const rows = []
const summaries = new Map()
for (const [name, file] of inputs) {
  let results
  try {
    results = readResults(file)
  } catch (err) {
    console.error(`summarize: ${name}: ${err.message}`)
    rows.push(`| ${name} | no results (${err.message.split('\n')[0]}) |`)
    continue
  }
  const s = summarize(tests, results)
  summaries.set(name, s)
  rows.push(`| ${name} | ${s.required.pass} | ${s.required.fail} | ${s.optimal.pass} | ${s.optimal.fail} | ` +
    `${s.check.yes} | ${s.check.no} | ${s.setup} | ${s.dependency} | ${s.untested} | **${s.score}** |`)
}

console.log(`cache-tests: ${tests.size} tests defined in ${suiteDir}`)
console.log('')
console.log('| cache | required pass | required FAIL | optimal pass | optimal fail | check yes | check no | setup fail | dependency fail | untested | score |')
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const r of rows) console.log(r)
console.log('')
console.log('score = required passed + optimal passed; checks are informational; setup and dependency failures count for nothing.')

for (const name of details) {
  const s = summaries.get(name)
  if (!s) continue
  console.log('')
  console.log(`${name}: ${s.failedRequired.length} failed required test(s)`)
  for (const [id, title, r] of s.failedRequired) {
    console.log(`  ${id}: ${title}`)
    console.log(`      -> ${Array.isArray(r) ? r.join(': ') : String(r)}`)
  }
  console.log(`${name}: ${s.failedOptimal.length} failed optimal test(s)`)
  for (const [id, title, r] of s.failedOptimal) {
    console.log(`  ${id}: ${title}`)
    console.log(`      -> ${Array.isArray(r) ? r.join(': ') : String(r)}`)
  }
}
