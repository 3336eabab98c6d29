/**
 * The gallery's DOM controls (overlaid on the canvas): regenerate, guidance and steps, DDIM-N vs
 * DDPM-500, seed, a two-category mix with a slider, export and close, plus a line of timings.
 */
import type { SamplerName } from 'spritediffusion';

export interface GallerySettings {
  sampler: SamplerName;
  steps: number;
  guidance: number;
  /** null: a random seed per regeneration. */
  seed: number | null;
  mixA: string;
  mixB: string;
  /** Weight of mixB (0..1). */
  mixT: number;
}

export interface GalleryPanelOptions {
  categories: readonly string[];
  initial: GallerySettings;
  onRegenerate(): void;
  onExport(): void;
  onClose(): void;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children);
  return e;
}

export class GalleryPanel {
  readonly element: HTMLDivElement;
  private readonly guidance: HTMLInputElement;
  private readonly guidanceValue: HTMLSpanElement;
  private readonly steps: HTMLInputElement;
  private readonly ddpm: HTMLInputElement;
  private readonly seed: HTMLInputElement;
  private readonly mixA: HTMLSelectElement;
  private readonly mixB: HTMLSelectElement;
  private readonly mixT: HTMLInputElement;
  private readonly mixValue: HTMLSpanElement;
  private readonly info: HTMLPreElement;

  constructor(opts: GalleryPanelOptions) {
    const init = opts.initial;
    const row = (...children: (Node | string)[]): HTMLDivElement => el('div', { className: 'row' }, ...children);
    const select = (id: string, value: string): HTMLSelectElement => {
      const s = el('select', { id });
      for (const c of opts.categories) s.append(el('option', { value: c, textContent: c }));
      s.value = value;
      return s;
    };
    this.guidance = el('input', { id: 'g-guidance', type: 'range', min: '0', max: '8', step: '0.5' });
    this.guidance.value = String(init.guidance);
    this.guidanceValue = el('span', { textContent: init.guidance.toFixed(1) });
    this.guidance.addEventListener('input', () => {
      this.guidanceValue.textContent = Number(this.guidance.value).toFixed(1);
    });
    this.steps = el('input', { id: 'g-steps', type: 'number', min: '1', max: '500', value: String(init.steps) });
    this.steps.style.width = '4em';
    const ddim = el('input', { id: 'g-ddim', type: 'radio', name: 'g-sampler', checked: init.sampler === 'ddim' });
    this.ddpm = el('input', { id: 'g-ddpm', type: 'radio', name: 'g-sampler', checked: init.sampler === 'ddpm' });
    const syncSteps = (): void => {
      this.steps.disabled = this.ddpm.checked;
    };
    ddim.addEventListener('change', syncSteps);
    this.ddpm.addEventListener('change', syncSteps);
    syncSteps();
    this.seed = el('input', { id: 'g-seed', type: 'number', min: '0', placeholder: 'random' });
    this.seed.style.width = '8em';
    if (init.seed !== null) this.seed.value = String(init.seed);
    this.mixA = select('g-mix-a', init.mixA);
    this.mixB = select('g-mix-b', init.mixB);
    this.mixT = el('input', { id: 'g-mix', type: 'range', min: '0', max: '1', step: '0.05' });
    this.mixT.value = String(init.mixT);
    this.mixValue = el('span', { textContent: init.mixT.toFixed(2) });
    this.mixT.addEventListener('input', () => {
      this.mixValue.textContent = Number(this.mixT.value).toFixed(2);
    });
    const button = (id: string, text: string, fn: () => void): HTMLButtonElement => {
      const b = el('button', { id, textContent: text });
      b.addEventListener('click', fn);
      return b;
    };
    this.info = el('pre', { id: 'g-info' });
    this.element = el(
      'div',
      { id: 'gallery-panel' },
      el('b', { textContent: 'Sprite gallery' }),
      row(button('g-regenerate', 'Regenerate', opts.onRegenerate), button('g-export', 'Export sheet', opts.onExport)),
      row('guidance ', this.guidance, ' ', this.guidanceValue),
      row(el('label', {}, ddim, ' DDIM '), this.steps, ' steps'),
      row(el('label', {}, this.ddpm, ' DDPM-500')),
      row('seed ', this.seed),
      row('mix ', this.mixA, ' + ', this.mixB),
      row(this.mixT, ' ', this.mixValue),
      this.info,
      row(button('g-close', 'Back to the dungeon (G)', opts.onClose)),
    );
    this.element.style.cssText =
      'position:fixed;right:8px;top:8px;z-index:10;width:230px;font:12px/1.5 monospace;color:#dfe;' +
      'background:#000c;padding:8px 10px;border-radius:4px';
    const style = el('style', {
      textContent:
        '#gallery-panel .row{margin:4px 0}#gallery-panel input[type=range]{width:130px;vertical-align:middle}' +
        '#gallery-panel button,#gallery-panel select,#gallery-panel input{font:12px monospace}' +
        '#gallery-panel pre{margin:6px 0;white-space:pre-wrap}',
    });
    this.element.prepend(style);
    document.body.append(this.element);
  }

  read(): GallerySettings {
    const steps = Math.round(Number(this.steps.value));
    const seedText = this.seed.value.trim();
    const seed = seedText === '' ? null : Number(seedText);
    return {
      sampler: this.ddpm.checked ? 'ddpm' : 'ddim',
      steps: Number.isFinite(steps) && steps >= 1 ? Math.min(steps, 500) : 25,
      guidance: Number(this.guidance.value),
      seed: seed !== null && Number.isInteger(seed) && seed >= 0 ? seed >>> 0 : null,
      mixA: this.mixA.value,
      mixB: this.mixB.value,
      mixT: Number(this.mixT.value),
    };
  }

  /** Shows the seed a regeneration used (as a placeholder, so the next one is random again). */
  showSeed(seed: number): void {
    this.seed.placeholder = `random (${seed})`;
  }

  setInfo(text: string): void {
    this.info.textContent = text;
  }

  destroy(): void {
    this.element.remove();
  }
}
