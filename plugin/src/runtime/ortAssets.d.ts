// Vite `?url` imports (the ORT runtime files are served from our own bundle, never a CDN).
declare module '*?url' {
  const url: string;
  export default url;
}
