// A static export into dist/, as the Phaser Next.js template builds it.
/** @type {import('next').NextConfig} */
export default { output: 'export', distDir: 'dist' };
