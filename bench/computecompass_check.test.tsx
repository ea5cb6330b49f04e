/*
 * Template of bench/computecompass_check.py: copied into a temporary copy of the
 * ComputeCompass client (src/__instbench__/), never run from this repository.
 *
 * It runs the client's own code over our publication: the loader
 * (BenchmarkDataService.fetchBenchmarkData, with only `fetch` replaced by one that serves
 * our three files), the insight functions (generatePerformanceInsights, compareInstances,
 * getTopPerformers, hasBenchmarkData) and the InstanceCard component (rendered in jsdom),
 * for every type of every file. A throw, a NaN / Infinity / undefined where the client
 * declares a value, or "NaN" / "undefined" / "Infinity" in what it renders is a problem.
 * Results go to report.json beside this file (one record per type), which the Python
 * runner prints.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { cleanup, render } from '@testing-library/react'
import {
  BenchmarkDataService,
  type InstanceBenchmarkData,
} from '../services/benchmark-data'
import { InstanceCard } from '../components/InstanceCard'
import type { InstanceMatch } from '../types'

const HERE = path.dirname(new URL(import.meta.url).pathname)
const DATA = path.join(HERE, 'data')
const FILES = {
  memory: 'memory-benchmarks.json',
  cpu: 'cpu-benchmarks.json',
  pricing: 'price-performance.json',
} as const
type Part = keyof typeof FILES

// Required fields of one type's object per file, written by the runner from the
// contract table (instbench.analysis.compass_contract).
const CONTRACT: Record<Part, string[]> = JSON.parse(
  fs.readFileSync(path.join(HERE, 'contract.json'), 'utf8')
)

const texts: Record<string, string> = {}
for (const name of Object.values(FILES)) {
  const file = path.join(DATA, name)
  if (fs.existsSync(file)) texts[name] = fs.readFileSync(file, 'utf8')
}
const fetched: string[] = []

// The only replacement: fetch serves our files by name (404 for anything else).
vi.stubGlobal('fetch', async (url: string) => {
  fetched.push(String(url))
  const name = String(url).split('/').pop() ?? ''
  const text = texts[name]
  if (text === undefined) {
    return { ok: false, status: 404, json: async () => ({}) }
  }
  // JSON.parse, as the browser's Response.json(): NaN or Infinity would throw here.
  return { ok: true, status: 200, json: async () => JSON.parse(text) }
})

function instancesOf(part: Part): string[] {
  const text = texts[FILES[part]]
  return text ? Object.keys(JSON.parse(text).instances ?? {}) : []
}

const TYPES = Array.from(
  new Set([...instancesOf('memory'), ...instancesOf('cpu'), ...instancesOf('pricing')])
).sort()

function at(obj: unknown, dotted: string): unknown {
  let node: unknown = obj
  for (const part of dotted.split('.')) {
    node = node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined
  }
  return node
}

/** Problems in a value the client gave back: undefined, NaN, infinities, anywhere. */
function scan(value: unknown, where: string, out: string[]): void {
  if (value === undefined) out.push(`${where} is undefined`)
  else if (typeof value === 'number' && !Number.isFinite(value)) out.push(`${where} is ${value}`)
  else if (Array.isArray(value)) value.forEach((v, i) => scan(v, `${where}[${i}]`, out))
  else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) scan(v, `${where}.${k}`, out)
}

function badText(text: string, where: string, out: string[]): void {
  for (const bad of ['NaN', 'undefined', 'Infinity', '[object Object]']) {
    if (text.includes(bad)) out.push(`${where} shows "${bad}"`)
  }
}

function match(type: string, b: InstanceBenchmarkData): InstanceMatch {
  const p = b.pricing
  return {
    instance: { InstanceType: type } as InstanceMatch['instance'],
    pricing: {
      onDemand: p?.onDemand ?? 0,
      reserved1yr: p?.reserved.term1yr ?? 0,
      reserved3yr: p?.reserved.term3yr ?? 0,
      spotCurrent: p?.spot.current ?? 0,
    },
    matchScore: 80,
    matchReasons: ['instbench check'],
  }
}

interface Line {
  type: string
  files: Record<Part, 'rendered' | 'absent'>
  insights: number
  problems: string[]
}
const report: { types: Line[]; service: string[]; fetched: string[] } = {
  types: [],
  service: [],
  fetched,
}

afterAll(() => {
  fs.writeFileSync(path.join(HERE, 'report.json'), JSON.stringify(report, null, 2))
})

describe('ComputeCompass client over an instbench publication', () => {
  it('loads the three files with the client loader', async () => {
    const db = await BenchmarkDataService.fetchBenchmarkData(true)
    expect(db.memory.version).not.toBe('fallback')
    for (const part of ['memory', 'cpu', 'pricing'] as const) {
      if (texts[FILES[part]] !== undefined) expect(db[part]).toBeDefined()
    }
  })

  for (const type of TYPES) {
    it(`renders ${type}`, async () => {
      const problems: string[] = []
      const line: Line = {
        type,
        files: { memory: 'absent', cpu: 'absent', pricing: 'absent' },
        insights: 0,
        problems,
      }
      report.types.push(line)
      try {
        const b = await BenchmarkDataService.getInstanceBenchmarks(type)
        if (!b) throw new Error('getInstanceBenchmarks returned null')
        for (const part of ['memory', 'cpu', 'pricing'] as const) {
          const inFile = instancesOf(part).includes(type)
          const got = b[part]
          if (inFile && !got) problems.push(`${part}: in the file, not returned by the loader`)
          if (!got) continue
          line.files[part] = 'rendered'
          for (const field of CONTRACT[part]) {
            const value = at(got, field)
            if (typeof value !== 'number' || !Number.isFinite(value))
              problems.push(`${part}.${field} is ${String(value)}`)
          }
          scan(got, part, problems)
        }
        const insights = BenchmarkDataService.generatePerformanceInsights(
          type,
          b,
          'Custom Workload'
        )
        line.insights = insights.length
        insights.forEach((insight, i) => {
          badText(insight.message, `insight ${i} (${insight.message})`, problems)
          // `data` is optional in PerformanceInsight; what it holds must be finite.
          if (insight.data !== undefined) scan(insight.data, `insight ${i} data`, problems)
        })
        const { container } = render(
          <InstanceCard
            instance={match(type, b)}
            rank={1}
            benchmarkData={b}
            performanceInsights={insights}
          />
        )
        const text = container.textContent ?? ''
        badText(text, 'InstanceCard', problems)
        if (b.memory && !text.includes(`${b.memory.stream.triad.bandwidth} GB/s`))
          problems.push('InstanceCard does not show the triad bandwidth')
        if (b.cpu && !text.includes(`CoreMark: ${b.cpu.coremark.score}`))
          problems.push('InstanceCard does not show the CoreMark score')
        if (b.pricing && !text.includes('/GFLOP'))
          problems.push('InstanceCard does not show the cost per GFLOP')
        cleanup()
      } catch (error) {
        problems.push(`throws: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`)
      }
      expect(problems).toEqual([])
    })
  }

  it('compares and ranks every type', async () => {
    const problems = report.service
    try {
      for (const metric of ['memory-bandwidth', 'cpu-performance', 'cost-efficiency'] as const) {
        const rows = await BenchmarkDataService.compareInstances(TYPES, metric)
        if (rows.length !== TYPES.length) problems.push(`compareInstances(${metric}): ${rows.length} rows`)
        rows.forEach(r => {
          if (!Number.isFinite(r.score)) problems.push(`compareInstances(${metric}) ${r.instanceType}: ${r.score}`)
        })
      }
      for (const category of ['memory', 'cpu', 'cost'] as const) {
        const top = await BenchmarkDataService.getTopPerformers(category, 1000)
        top.forEach(r => {
          if (!Number.isFinite(r.value)) problems.push(`getTopPerformers(${category}) ${r.instanceType}: ${r.value}`)
          if (!TYPES.includes(r.instanceType)) problems.push(`getTopPerformers(${category}) names ${r.instanceType}`)
          if (!r.architecture) problems.push(`getTopPerformers(${category}) ${r.instanceType}: no architecture`)
        })
      }
      for (const type of TYPES) {
        if (!(await BenchmarkDataService.hasBenchmarkData(type)) && instancesOf('memory').concat(instancesOf('cpu')).includes(type))
          problems.push(`hasBenchmarkData(${type}) is false`)
      }
    } catch (error) {
      problems.push(`throws: ${error instanceof Error ? error.message : String(error)}`)
    }
    expect(problems).toEqual([])
  })
})
