/**
 * DOM overlay with the plugin's live counters (backend, ms per denoising step, sprites generated,
 * cache hits, queue), refreshed twice a second, plus a button that opens the gallery.
 */
import type { DiffusionStats } from 'spritediffusion';

export interface OverlayOptions {
  stats(): DiffusionStats | null;
  status(): string;
  onGallery(): void;
}

export class StatsOverlay {
  readonly element: HTMLDivElement;
  private readonly body: HTMLPreElement;
  private readonly timer: number;

  constructor(private readonly opts: OverlayOptions) {
    const el = document.createElement('div');
    el.id = 'stats-overlay';
    el.style.cssText =
      'position:fixed;left:8px;top:8px;z-index:10;font:12px/1.4 monospace;color:#dfe;background:#000a;' +
      'padding:6px 10px;border-radius:4px;pointer-events:auto;min-width:120px';
    this.body = document.createElement('pre');
    this.body.style.margin = '0';
    const button = document.createElement('button');
    button.textContent = 'Gallery (G)';
    button.id = 'open-gallery';
    button.style.cssText = 'margin-top:6px;font:12px monospace;cursor:pointer';
    button.addEventListener('click', () => opts.onGallery());
    el.append(this.body, button);
    document.body.append(el);
    this.element = el;
    this.refresh();
    this.timer = window.setInterval(() => this.refresh(), 500);
  }

  refresh(): void {
    const s = this.opts.stats();
    const pooled = s ? Object.values(s.pools).reduce((a, b) => a + b, 0) : 0;
    const lines = [
      `backend    ${s?.backend === 'webgpu' ? 'WebGPU' : s?.backend === 'wasm' ? 'WASM' : '…'}`,
      `ms/step    ${s && s.msPerStep > 0 ? s.msPerStep.toFixed(1) : '–'}`,
      `generated  ${s?.generated ?? 0}`,
      `cache hits ${s?.cacheHits ?? 0}`,
      `queue      ${s?.queueLength ?? 0}`,
      `pooled     ${pooled}`,
      this.opts.status(),
    ];
    this.body.textContent = lines.filter((l) => l !== '').join('\n');
    this.element.dataset.backend = s?.backend ?? '';
  }

  setVisible(visible: boolean): void {
    this.element.style.display = visible ? '' : 'none';
  }

  destroy(): void {
    window.clearInterval(this.timer);
    this.element.remove();
  }
}
