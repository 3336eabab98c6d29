/**
 * Remembers which model category each plugin texture shows and whether it has materialised (its
 * final pixels are in), from the plugin's `texture` events and the keys `spawn` returns.
 */
import type { DiffusionPlugin } from 'spritediffusion';

export class SpriteRegistry {
  private readonly categories = new Map<string, string>();
  private readonly done = new Set<string>();

  constructor(plugin: DiffusionPlugin) {
    plugin.on('texture', (e) => {
      this.categories.set(e.key, e.category);
      this.done.add(e.key);
    });
  }

  /** Records the category of a texture returned by `spawn` (a placeholder is not materialised yet). */
  note(key: string, category: string): void {
    this.categories.set(key, category);
  }

  category(key: string): string | undefined {
    return this.categories.get(key);
  }

  isMaterialised(key: string): boolean {
    return this.done.has(key);
  }

  /** Forgets a texture (the scene removed it). */
  forget(key: string): void {
    this.categories.delete(key);
    this.done.delete(key);
  }
}
