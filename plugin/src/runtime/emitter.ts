/** A tiny typed event emitter (no Phaser dependency), used by the client and the plugin. */
export type Listener<T> = (payload: T) => void;

export class Emitter<Events extends object> {
  private readonly map = new Map<keyof Events, Set<{ fn: Listener<never>; ctx: unknown; once: boolean }>>();
  /** Events emitted while nobody listened, kept for the first listener (see the constructor). */
  private readonly held = new Map<keyof Events, unknown[]>();

  /**
   * @param replay - events that are kept when emitted with no listener (at most 16 each) and
   *   delivered, in order, to the first listener added afterwards (in a microtask), so an error
   *   raised before anyone subscribed is not lost.
   * @param latest - events of which only the last one emitted with no listener is kept and delivered
   *   that way (a state such as download progress, where older payloads are stale).
   */
  constructor(
    private readonly replay: readonly (keyof Events)[] = [],
    private readonly latest: readonly (keyof Events)[] = [],
  ) {}

  /** Adds a listener. */
  on<K extends keyof Events>(event: K, fn: Listener<Events[K]>, context?: unknown): this {
    this.add(event, fn, context, false);
    return this;
  }

  /** Adds a listener removed after its first call. */
  once<K extends keyof Events>(event: K, fn: Listener<Events[K]>, context?: unknown): this {
    this.add(event, fn, context, true);
    return this;
  }

  /** Removes a listener (all listeners of the event when `fn` is omitted). */
  off<K extends keyof Events>(event: K, fn?: Listener<Events[K]>, context?: unknown): this {
    const set = this.map.get(event);
    if (!set) return this;
    for (const l of set) {
      if (!fn || (l.fn === fn && (context === undefined || l.ctx === context))) set.delete(l);
    }
    if (set.size === 0) this.map.delete(event);
    return this;
  }

  /** Calls the listeners of an event; returns whether there were any. */
  emit<K extends keyof Events>(event: K, payload: Events[K]): boolean {
    const set = this.map.get(event);
    if (!set || set.size === 0) {
      if (this.latest.includes(event)) {
        this.held.set(event, [payload]);
      } else if (this.replay.includes(event)) {
        const kept = this.held.get(event) ?? [];
        if (kept.length < 16) kept.push(payload);
        this.held.set(event, kept);
      }
      return false;
    }
    for (const l of [...set]) {
      if (l.once) set.delete(l);
      (l.fn as Listener<Events[K]>).call(l.ctx, payload);
    }
    return true;
  }

  /** Forgets what was kept of an event for its first listener (a state that no longer holds). */
  drop(event: keyof Events): void {
    this.held.delete(event);
  }

  /** Number of listeners of one event, or of all events. */
  listenerCount(event?: keyof Events): number {
    if (event !== undefined) return this.map.get(event)?.size ?? 0;
    let n = 0;
    for (const s of this.map.values()) n += s.size;
    return n;
  }

  /** Removes every listener. */
  removeAllListeners(): this {
    this.map.clear();
    this.held.clear();
    return this;
  }

  private add<K extends keyof Events>(event: K, fn: Listener<Events[K]>, ctx: unknown, once: boolean): void {
    let set = this.map.get(event);
    if (!set) {
      set = new Set();
      this.map.set(event, set);
    }
    set.add({ fn: fn as Listener<never>, ctx, once });
    const kept = this.held.get(event);
    if (kept) {
      this.held.delete(event);
      queueMicrotask(() => {
        for (const payload of kept) this.emit(event, payload as Events[K]);
      });
    }
  }
}
