import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** `npm run lint`: ESLint's and typescript-eslint's recommended rules, then the import layers (.dependency-cruiser.cjs). */
export default tseslint.config(
  { ignores: ['dist/', 'src/generated/', 'examples/generated/', 'bench/baselines/', 'bench/.tmp/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // `_`-prefixed parameters are the ones an interface makes us take.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='LRUCache'] Property[key.name='max']",
          message: "lru-cache's `max` allocates every slot up front; bound a cache by its entries with lruOfEntries (src/cache/lru-of-entries.ts)",
        },
      ],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    // Tests read JSON answers of any shape.
    files: ['test/**/*.ts', 'src/**/*.test.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
