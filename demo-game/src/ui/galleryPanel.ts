/**
 * The gallery's DOM controls (overlaid on the canvas): regenerate, guidance and steps, DDIM-N vs
 * DDPM-500, seed, a two-category mix with a slider (blended, or composed of its parts), art direction (tileable, palette, dither,
 * outline), variations and inpainting of the selected sprite, export and close, plus a line of timings.
 */
import type { SamplerName } from 'spritediffusion';

/** The inpainting masks the gallery offers: which part of the selected sprite is regenerated. */
export const MASK_PRESETS = ['right half', 'left half', 'top half', 'bottom half', 'centre'] as const;
export type MaskPreset = (typeof MASK_PRESETS)[number];

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
  /** The mix drawn as its parts (the plugin's `compose`) instead of one blended context. */
  compose: boolean;
  tileable: boolean;
  /** '' (none), a palette name or a colour list. */
  palette: string;
  dither: boolean;
  outline: boolean;
  /** Variation strength (0..1). */
  strength: number;
  mask: MaskPreset;
}

export interface GalleryPanelOptions {
  categories: readonly string[];
  initial: GallerySettings;
  onRegenerate(): void;
  /** Variations of the selected sprite. */
  onVary(): void;
  /** Inpaint the selected sprite with the chosen mask. */
  onInpaint(): void;
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
  private readonly compose: HTMLInputElement;
  private readonly info: HTMLPreElement;
  private readonly tileable: HTMLInputElement;
  private readonly palette: HTMLSelectElement;
  private readonly dither: HTMLInputElement;
  private readonly outline: HTMLInputElement;
  private readonly strength: HTMLInputElement;
  private readonly strengthValue: HTMLSpanElement;
  private readonly mask: HTMLSelectElement;

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
    const check = (id: string, on: boolean): HTMLInputElement => el('input', { id, type: 'checkbox', checked: on });
    this.compose = check('g-compose', init.compose);
    this.tileable = check('g-tileable', init.tileable);
    this.dither = check('g-dither', init.dither);
    this.outline = check('g-outline', init.outline);
    this.palette = el('select', { id: 'g-palette' });
    for (const [value, text] of [
      ['', 'none'],
      ['pico8', 'PICO-8'],
      ['db32', 'DB32'],
      ['nes', 'NES'],
    ] as const) {
      this.palette.append(el('option', { value, textContent: text }));
    }
    this.palette.value = init.palette;
    this.strength = el('input', { id: 'g-strength', type: 'range', min: '0', max: '1', step: '0.05' });
    this.strength.value = String(init.strength);
    this.strengthValue = el('span', { textContent: init.strength.toFixed(2) });
    this.strength.addEventListener('input', () => {
      this.strengthValue.textContent = Number(this.strength.value).toFixed(2);
    });
    this.mask = el('select', { id: 'g-mask' });
    for (const m of MASK_PRESETS) this.mask.append(el('option', { value: m, textContent: m }));
    this.mask.value = init.mask;
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
      row(el('label', {}, this.compose, ' compose (both things)')),
      row(el('label', {}, this.tileable, ' tileable '), el('label', {}, this.outline, ' outline')),
      row('palette ', this.palette, ' ', el('label', {}, this.dither, ' dither')),
      el('div', { className: 'row', textContent: 'selected sprite (click one):' }),
      row(button('g-vary', 'Vary', opts.onVary), ' strength ', this.strengthValue),
      row(this.strength),
      row(button('g-inpaint', 'Inpaint', opts.onInpaint), ' ', this.mask),
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
      compose: this.compose.checked,
      tileable: this.tileable.checked,
      palette: this.palette.value,
      dither: this.dither.checked && this.palette.value !== '',
      outline: this.outline.checked,
      strength: Number(this.strength.value),
      mask: this.mask.value as MaskPreset,
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
