'use client';
// The game lives as long as the component: React's development StrictMode mounts it twice, which
// destroys the first game at once; the plugin then starts over for the second.
import { useLayoutEffect } from 'react';
import { start } from './main';

export default function PhaserGame() {
  useLayoutEffect(() => {
    const game = start('game-container');
    return () => game.destroy(true);
  }, []);
  return <div id="game-container"></div>;
}
