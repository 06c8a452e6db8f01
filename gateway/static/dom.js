/** A tiny DOM helper shared by the dashboard's views. @module dom */

/**
 * `<tag class="className">text</tag>`.
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 * @returns {HTMLElement}
 */
export function element(tag, className, text) {
  const el = document.createElement(tag);
  el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}
