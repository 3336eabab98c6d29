/**
 * spritediffusion: a Phaser plugin that generates game sprites at runtime with a small
 * diffusion model (onnxruntime-web in a Web Worker).
 *
 * This is the package entry point. The runtime (sampler, worker, ORT backend, cache,
 * Phaser ScenePlugin) lands here in later changes.
 */

/** Library version; kept equal to plugin/package.json "version" (a unit test enforces it). */
export const VERSION = '0.1.0';
