// A tiny element builder. Text always goes in through textContent: file names and error messages are
// user-controlled, never HTML.
export function h(
  tag: string,
  attrs: { [name: string]: string } = {},
  ...children: (Node | string | null)[]
): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null) {
      node.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
  }
  return node;
}
