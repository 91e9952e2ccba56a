import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { NoSchemaIntrospectionCustomRule, type ValidationRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { OpsConfig } from '../config-types.js';

/**
 * What a document may ask, checked before it runs: graphql-armor's limits
 * (tokens while parsing; depth, cost, aliases and directives as validation
 * rules) and, with introspection off, no `__schema`/`__type` and no "Did you
 * mean" in errors (a suggestion would leak the schema introspection hides).
 *
 * The same rules as graphql-armor's and yoga's own plugins, made once and
 * added in one validation hook: every hook costs each request its turn through
 * envelop's chain (about 1 KB allocated), even though yoga's validation cache
 * runs the rules only on a document's first request.
 */
export function useOperationRules(limits: OpsConfig['limits'], options: { introspection: boolean }): Plugin {
  const rules: ValidationRule[] = [
    maxDepthRule({ n: limits.maxDepth }),
    costLimitRule({ maxCost: limits.maxCost }),
    maxAliasesRule({ n: limits.maxAliases }),
    maxDirectivesRule({ n: limits.maxDirectives }),
    ...(options.introspection ? [] : [NoSchemaIntrospectionCustomRule]),
  ];
  const hideSuggestions = options.introspection ? undefined : blockFieldSuggestionsPlugin().onValidate;
  return {
    onParse: maxTokensPlugin({ n: limits.maxTokens }).onParse,
    onValidate(payload) {
      for (const rule of rules) payload.addValidationRule(rule);
      return hideSuggestions?.(payload);
    },
  };
}
