// Run by `npm test` before tap (its pretest script). npm test runs tap without its TypeScript plugin
// (`--plugin=!@tapjs/typescript`: tsx loads the TypeScript), but `npm ci` and `npm run coverage` leave tap built
// with it. tap rebuilds itself for the plugins asked, but only after it has taken the test processes' loaders from
// the build it found: the whole first run after `npm ci` loaded every test file through ts-node as well as tsx
// (each test file's process took a median 5.3 s to start instead of 2.1 s; CI in a new clone 6 min 37 s, and
// 5 min 34 s with this step). So the build is made right here first, when it holds the plugin.
import { execFileSync } from 'node:child_process'
import { t } from 'tap'

if (t.pluginSignature.split('\n').includes('@tapjs/typescript')) {
  console.log('npm test: building tap without @tapjs/typescript first (tsx loads the TypeScript)')
  // npm puts node_modules/.bin on the PATH of its scripts.
  execFileSync('tap', ['build', '--plugin=!@tapjs/typescript'], { stdio: 'inherit' })
}
