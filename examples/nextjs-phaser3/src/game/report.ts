// What the example tests read (window.__spritediffusion): generated pixels seen and errors.
type Source = { getContext?: (id: '2d') => CanvasRenderingContext2D | null; width: number; height: number };

const state = { opaque: 0, textures: 0, errors: [] as string[], backend: [] as string[] };
(window as unknown as { __spritediffusion: typeof state }).__spritediffusion = state;

export const report = {
  backend(e: { backend: string; reason: string }) {
    state.backend.push(`${e.backend}: ${e.reason}`);
  },
  error(e: unknown) {
    state.errors.push(e instanceof Error ? e.message : String(e));
  },
  texture(source: unknown) {
    const canvas = source as Source;
    const data = canvas.getContext?.('2d')?.getImageData(0, 0, canvas.width, canvas.height).data;
    let opaque = 0;
    for (let i = 3; data && i < data.length; i += 4) if ((data[i] ?? 0) > 0) opaque++;
    state.textures++;
    state.opaque = Math.max(state.opaque, opaque);
  },
};
