/* SPDX-License-Identifier: Apache-2.0 */
/* YAML <-> JSON document model. Parsing goes through libfyaml and resolves
 * plain scalars with the YAML 1.2 core schema (quoted scalars stay strings).
 * The writer prints what sigs.k8s.io/yaml prints (kumactl's -o yaml): block
 * style, sequences flush with their key, strings quoted only when needed. */
#ifndef KM_CODEC_YAML_H
#define KM_CODEC_YAML_H

#include <stddef.h>

#include "codec/json.h"

/* Parses every document of a (multi-document) stream. Empty documents are
 * skipped. <*docs> is an arena array of <*n> trees. On a syntax error returns
 * -KM_E_PARSE with "line L, column C: message" in <err>. */
int km_yaml_parse(struct km_arena *a, const char *text, size_t len, struct km_json ***docs,
		  size_t *n, struct km_buf *err);
/* Writes <v> as a block YAML document (no leading "---"). */
int km_yaml_write(struct km_buf *out, const struct km_json *v);

#endif
