import js from '@eslint/js'
import { defineConfig, globalIgnores } from 'eslint/config'
import tseslint from 'typescript-eslint'

// Plain JavaScript files (bench/, this file) run on Node: its globals are whatever Node defines.
const nodeGlobals = Object.fromEntries(Object.getOwnPropertyNames(globalThis).map(name => [name, 'readonly']))

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'coverage/', '.tap/', 'openapi/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  { files: ['**/*.{js,mjs,cjs}'], languageOptions: { globals: nodeGlobals } },
  {
    rules: {
      // A leading underscore marks an argument, variable or caught error as unused on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
    },
  },
)
