// What the example tests read (window.__spritediffusion): generated pixels seen and errors.
const state = { opaque: 0, textures: 0, errors: [], backend: [] };
window.__spritediffusion = state;

export const report = {
  backend(e) {
    state.backend.push(`${e.backend}: ${e.reason}`);
  },
  error(e) {
    state.errors.push(e instanceof Error ? e.message : String(e));
  },
  texture(canvas) {
    const data = canvas.getContext?.('2d')?.getImageData(0, 0, canvas.width, canvas.height).data;
    let opaque = 0;
    for (let i = 3; data && i < data.length; i += 4) if (data[i] > 0) opaque++;
    state.textures++;
    state.opaque = Math.max(state.opaque, opaque);
  },
};
