/**
 * What the two WebGPU step runners (ortBackend's uncaptured one and {@link CapturedGraphs}) share:
 * their sessions' options, the usage of the buffers they hand to onnxruntime-web, their size rule,
 * and the update graph's input and output names (see plugin/MODEL_FORMAT.md).
 */
import type { InferenceSession } from 'onnxruntime-web/webgpu';

/**
 * The tensor layout the WebGPU execution provider runs convolutions in. 'NHWC' (onnxruntime-web's
 * own choice) wraps NCHW-only operators in transposes (the default model: 50 of 160 dispatches per
 * run); 'NCHW' needs none but runs the convolutions in the EP's NCHW kernels. Measured in the loop bench.
 */
export type WebGpuLayout = 'NHWC' | 'NCHW';

/**
 * Options of every WebGPU session (the captured ones add `enableGraphCapture`). `disable_quant_qdq`
 * lets onnxruntime fold an int8 file's DequantizeLinear nodes into float32 weights when the session
 * loads: int8 download, float32 compute, and none of the 66 dequantize dispatches per run it made
 * otherwise (the default model; the same outputs, measured on SwiftShader).
 */
export function webgpuSessionOptions(layout: WebGpuLayout = 'NHWC'): InferenceSession.SessionOptions {
  return {
    executionProviders: [layout === 'NHWC' ? 'webgpu' : { name: 'webgpu', preferredLayout: layout }],
    preferredOutputLocation: 'gpu-buffer',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3, // errors only (node-placement warnings are expected: shape ops run on the CPU)
    extra: { session: { disable_quant_qdq: '1' } },
  };
}

// GPUBufferUsage flags (numeric, so the runtime also type-checks without WebGPU lib globals).
const MAP_READ = 0x01;
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const STORAGE = 0x80;

/** A tensor's buffer: ORT reads and writes it; the queue uploads to it and copies from it. */
export const TENSOR_USAGE = STORAGE | COPY_SRC | COPY_DST;
/** A staging buffer to map for reading on the CPU. */
export const READBACK_USAGE = MAP_READ | COPY_DST;
/** GPUMapMode.READ. */
export const MAP_MODE_READ = 0x01;

/** A buffer's size for `bytes` of data: rounded up to 16 bytes. */
export function bufferSize(bytes: number): number {
  return Math.ceil(bytes / 16) * 16;
}

/** update.onnx's inputs and outputs. */
export const UPDATE_INPUTS = { x: 'x', eps: 'eps', z: 'z', coef: 'coef', guidance: 'guidance' } as const;
export const UPDATE_OUTPUTS = { xNext: 'x_next', xNextRep: 'x_next_rep' } as const;
