// Globals the demo game (demo-game/src/main.ts) exposes for the browser tests.
export {};

declare global {
  interface Window {
    __game?: { scene: { isActive(key: string): boolean } };
    __spritediffusionVersion?: string;
  }
}
