/*
 * cl_sources.h - the interface of the table that cl/embed_cl.py generates
 * (cl_sources.c in the build folder): every kernel file under cl/, with its
 * includes expanded and #line markers, as a NUL-terminated byte array.
 */
#ifndef GDN_CL_SOURCES_H
#define GDN_CL_SOURCES_H

#include <stddef.h>

struct gdn_cl_source {
    const char *path;   /* relative to cl/, e.g. "gated_delta/kkt.cl" */
    const char *text;   /* NUL-terminated, includes expanded          */
    size_t      size;   /* strlen(text)                               */
    const char *sha256; /* hex digest of text                         */
};

extern const struct gdn_cl_source gdn__cl_sources[];
extern const size_t               gdn__cl_sources_count;

/* The embedded source of `path`, or NULL. */
const struct gdn_cl_source *gdn__cl_source_find(const char *path);

#endif /* GDN_CL_SOURCES_H */
