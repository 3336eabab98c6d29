'use client';
// Phaser needs the browser: the game is loaded on the client only.
import dynamic from 'next/dynamic';

const PhaserGame = dynamic(() => import('../game/PhaserGame'), { ssr: false });

export default function Game() {
  return <PhaserGame />;
}
