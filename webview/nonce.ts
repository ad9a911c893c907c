/**
 * Imported first: Lit reads `window.litNonce` when it has to fall back to <style> elements (no
 * adoptedStyleSheets), and our CSP only admits styles carrying the page's nonce.
 */
const script = document.currentScript as HTMLScriptElement | null;
if (script?.nonce) (window as unknown as { litNonce?: string }).litNonce = script.nonce;
export {};
