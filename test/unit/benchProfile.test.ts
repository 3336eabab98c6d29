/**
 * The bench's operator profile counts only the calls after the warm-up: a fresh ORT-web session runs
 * its first calls on V8's baseline WASM compiler, several times slower than later calls.
 */
import { describe, expect, it } from 'vitest';
import { summarizeTrace, type TraceEvent } from '../bench/profile.ts';

/** A trace of calls (model_run events) each holding one Conv and one Add kernel event. */
function trace(calls: { conv: number; add: number }[]): TraceEvent[] {
  const ev: TraceEvent[] = [];
  let ts = 1000;
  for (const c of calls) {
    const dur = (c.conv + c.add) * 1000 + 50;
    ev.push({ cat: 'Session', name: 'model_run', ts, dur });
    ev.push({ cat: 'Node', name: '/a/Conv_kernel_time', ts: ts + 10, dur: c.conv * 1000, args: { op_name: 'Conv' } });
    ev.push({ cat: 'Node', name: '/a/Conv_fence_before', ts: ts + 5, dur: 0, args: { op_name: 'Conv' } });
    ev.push({ cat: 'Node', name: '/b/Add_kernel_time', ts: ts + 20, dur: c.add * 1000, args: { op_name: 'Add' } });
    ts += dur + 100;
  }
  // ORT writes session-level events (model loading) before any call.
  ev.unshift({ cat: 'Session', name: 'model_loading_array', ts: 0, dur: 900 });
  // Trace files are not sorted by time.
  return ev.reverse();
}

describe('summarizeTrace', () => {
  it('averages kernel time over the last `runs` calls and leaves the warm-up calls out', () => {
    const s = summarizeTrace(
      trace([
        { conv: 900, add: 90 }, // first call: baseline-compiled WASM
        { conv: 300, add: 30 },
        { conv: 100, add: 10 },
        { conv: 120, add: 12 },
      ]),
      2,
    );
    expect(s.skipped).toBe(2);
    expect(s.byOp.get('Conv')).toBeCloseTo(110, 6);
    expect(s.byOp.get('Add')).toBeCloseTo(11, 6);
    expect(s.runMs.map((x) => Math.round(x))).toEqual([110, 132]);
  });

  it('counts every call when runs equals the calls in the trace', () => {
    const s = summarizeTrace(
      trace([
        { conv: 10, add: 2 },
        { conv: 20, add: 4 },
      ]),
      2,
    );
    expect(s.skipped).toBe(0);
    expect(s.byOp.get('Conv')).toBeCloseTo(15, 6);
  });

  it('leaves out kernels traced after the last counted call, and refuses a trace that was cut short', () => {
    const ev = trace([
      { conv: 50, add: 5 },
      { conv: 10, add: 1 },
    ]);
    // A kernel event of a third call whose model_run event was lost.
    ev.push({ cat: 'Node', name: '/a/Conv_kernel_time', ts: 1e9, dur: 999_000, args: { op_name: 'Conv' } });
    expect(summarizeTrace(ev, 1).byOp.get('Conv')).toBeCloseTo(10, 6);
    expect(() => summarizeTrace(ev, 1, 3)).toThrow(/2 model runs but the session made 3: it was cut short/);
    expect(() => summarizeTrace(ev, 0)).toThrow(/runs must be a positive integer/);
  });

  it('refuses a trace with fewer calls than asked for', () => {
    expect(() => summarizeTrace(trace([{ conv: 10, add: 2 }]), 3)).toThrow(/1 model runs, expected at least 3/);
  });
});
