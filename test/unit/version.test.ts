import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../../plugin/src/index.ts';

describe('spritediffusion entry', () => {
  it('exports VERSION equal to plugin/package.json version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../plugin/package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(VERSION).toBe(pkg.version);
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });
});
