/* tocsin — SPDX-License-Identifier: MIT
 *
 * Helpers shared by the files of model/ only (not a public interface).
 */
#ifndef TC_MODEL_INTERNAL_H
#define TC_MODEL_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* jansson's object iterator takes a non-const json_t although it only reads;
 * this is the one place model/ drops the qualifier, so validators can take
 * const objects. The uintptr_t hop keeps -Wcast-qual quiet on purpose. */
static inline json_t *
tc_model__unconst(const json_t *j)
{
    return (json_t *)(uintptr_t)j;
}

/* Iterates the keys of a const object (read only). */
#define tc_model__object_foreach(obj, key, value)                                             \
    for (void *tc_it_ = json_object_iter(tc_model__unconst(obj));                             \
         tc_it_ != NULL &&                                                                    \
         ((key) = json_object_iter_key(tc_it_), (value) = json_object_iter_value(tc_it_), 1); \
         tc_it_ = json_object_iter_next(tc_model__unconst(obj), tc_it_))

/* Code points in valid UTF-8 (what jansson strings hold): jsonschema's
 * minLength/maxLength count code points, so every "chars" bound does too. */
static inline size_t
tc_model__utf8_len(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            count++;
        }
    }
    return count;
}

#endif
