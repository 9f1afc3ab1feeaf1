// Client-side routes: the path of the address bar, changed with history.pushState. The server
// answers every such path with index.html, so a reload or a shared link opens the same screen.
import { useEffect, useState } from 'preact/hooks';

const listeners = new Set<() => void>();

export function navigate(to: string): void {
  if (to === location.pathname + location.search) return;
  history.pushState(null, '', to);
  listeners.forEach((f) => f());
}

window.addEventListener('popstate', () => listeners.forEach((f) => f()));

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const f = () => {
      setPath(location.pathname);
      // the new screen's heading gets the focus, as a page load would give it
      window.setTimeout(() => document.getElementById('main')?.focus(), 0);
    };
    listeners.add(f);
    return () => { listeners.delete(f); };
  }, []);
  return path;
}

export function query(): URLSearchParams {
  return new URLSearchParams(location.search);
}

// Props of a link that navigates inside the app.
export function link(href: string) {
  return {
    href,
    onClick: (e: MouseEvent) => {
      if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
      e.preventDefault();
      navigate(href);
    },
  };
}
