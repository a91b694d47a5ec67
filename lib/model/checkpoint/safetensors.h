/*
 * safetensors.h - internal reader and writer of the safetensors checkpoint
 * format (https://github.com/huggingface/safetensors), used by the model
 * layer to save and load checkpoints in fla's layout.
 *
 * File layout: an 8-byte little-endian unsigned header length N, then N bytes
 * of UTF-8 JSON (one object), then the data buffer. Each key of the object
 * other than "__metadata__" names a tensor:
 *     {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
 * with begin/end relative to the start of the data buffer; "__metadata__" is
 * an object of string -> string. All data are little-endian, row-major.
 *
 * Reading keeps the file open and reads each tensor on demand, so a large
 * checkpoint is never held in memory whole (only its header, at most
 * GDN__ST_MAX_HEADER bytes).
 *
 * Status codes (every failure also fills err->msg with the path, the tensor
 * and what is wrong; err may be NULL):
 *   GDN_STATUS_IO                 cannot open/stat/read/write, not a regular
 *                                 file, or the file is shorter than its own
 *                                 header says (< 8 bytes, header or tensor
 *                                 data beyond the end: "truncated")
 *   GDN_STATUS_INVALID_ARGUMENT   the header is malformed or inconsistent by
 *                                 itself (hostile files land here), or the
 *                                 arguments of gdn__st_write are
 *   GDN_STATUS_UNSUPPORTED        gdn__st_read_f32 on a non-float dtype
 *   GDN_STATUS_OUT_OF_HOST_MEMORY an allocation failed
 *
 * Threading: a file object is used by one thread at a time (reads seek the
 * shared FILE*). Different file objects are independent.
 */
#ifndef GDN_MODEL_SAFETENSORS_H
#define GDN_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gdn.h"

#define GDN__ST_MAX_DIMS   8
#define GDN__ST_MAX_HEADER ((uint64_t)100 << 20) /* 100 MiB, as the python library */

/** Filled on failure: "<path>: tensor '<name>': <what is wrong>". */
struct gdn__st_err {
    char msg[512];
};

/** One tensor of an open file; owned by the file object. */
struct gdn__st_tensor {
    char    *name;                    /* NUL-terminated, owned by the file object */
    char     dtype[8];                /* as in the file: "F32", "BF16", ... */
    int32_t  ndim;                    /* 0 (scalar) .. GDN__ST_MAX_DIMS */
    int64_t  shape[GDN__ST_MAX_DIMS]; /* entries past ndim are 0 */
    int64_t  numel;                   /* product of shape; 1 for a scalar */
    uint64_t begin, end;              /* byte offsets in the data buffer */
};

struct gdn__st_file; /* open FILE*, tensor table sorted by name, metadata */

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

/** Open and validate a file (header only; tensor data are read on demand).
 *  On failure *out = NULL. Checks: header length in 1..GDN__ST_MAX_HEADER and
 *  inside the file, UTF-8, JSON object without duplicate keys, every tensor
 *  entry complete with a known dtype, <= 8 non-negative integer dims, no
 *  overflow of numel or byte size, data_offsets [begin <= end] matching
 *  numel * element size and inside the data buffer, no two non-empty tensors
 *  overlapping, "__metadata__" an object of strings. Unknown extra keys in a
 *  tensor entry are ignored; gaps between tensors are allowed. */
gdn_status gdn__st_open(const char *path, struct gdn__st_file **out, struct gdn__st_err *err);
/** Close the file and free everything it owns. NULL is a no-op. */
void gdn__st_close(struct gdn__st_file *f);

/** Number of tensors. */
size_t gdn__st_count(const struct gdn__st_file *f);
/** i-th tensor in name order (strcmp); NULL when i >= count. */
const struct gdn__st_tensor *gdn__st_at(const struct gdn__st_file *f, size_t i);
/** Tensor by exact name (binary search); NULL if absent or name is NULL. */
const struct gdn__st_tensor *gdn__st_find(const struct gdn__st_file *f, const char *name);

/** Metadata value of key, owned by the file object; NULL if absent. */
const char *gdn__st_meta(const struct gdn__st_file *f, const char *key);
/** Number of metadata pairs, and the i-th in file order (false if i is out
 *  of range). key and value are owned by the file object. */
size_t gdn__st_meta_count(const struct gdn__st_file *f);
int gdn__st_meta_at(const struct gdn__st_file *f, size_t i, const char **key, const char **value);

/** Read tensor t (from this file) converted to float32 into dst, which holds
 *  t->numel floats. F32, F16, BF16 are converted exactly; F64 rounds to
 *  nearest (overflow gives inf). Other dtypes: GDN_STATUS_UNSUPPORTED.
 *  GDN_STATUS_IO on a short read (the file shrank since it was opened). */
gdn_status gdn__st_read_f32(struct gdn__st_file *f, const struct gdn__st_tensor *t, float *dst,
                            struct gdn__st_err *err);
/** Read the raw bytes of t (t->end - t->begin bytes, little-endian as in the
 *  file) into dst. */
gdn_status gdn__st_read_raw(struct gdn__st_file *f, const struct gdn__st_tensor *t, void *dst,
                            struct gdn__st_err *err);

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

/** One tensor to write; everything is borrowed for the call. data holds
 *  nbytes bytes, little-endian (may be NULL when nbytes is 0). */
struct gdn__st_entry {
    const char    *name;
    const char    *dtype;
    int32_t        ndim;
    const int64_t *shape;
    const void    *data;
    size_t         nbytes;
};

/** Write a file atomically: to a temp file in the same folder, fflush, fsync,
 *  rename over path (then fsync the folder, best effort). The temp file is
 *  removed on any failure and an existing file at path is untouched.
 *  Tensors are written in the given order, contiguous, with the header padded
 *  with spaces so the data buffer starts at a multiple of 8 (the layout the
 *  python library writes and requires). meta: n_meta key/value pairs
 *  (meta[2i], meta[2i+1]) in "__metadata__" (omitted when n_meta is 0; meta
 *  may then be NULL). Arguments are checked before anything is created:
 *  names unique, non-empty, valid UTF-8 and not "__metadata__"; dtype known;
 *  ndim 0..8; dims >= 0; nbytes == numel * dtype size; metadata keys unique,
 *  keys and values non-NULL UTF-8 -> GDN_STATUS_INVALID_ARGUMENT. */
gdn_status gdn__st_write(const char *path, const struct gdn__st_entry *e, size_t n,
                         const char *const *meta, size_t n_meta, struct gdn__st_err *err);

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/** Bytes per element of a safetensors dtype name (F64 F32 F16 BF16 I64 I32
 *  I16 I8 U64 U32 U16 U8 BOOL F8_E4M3 F8_E5M2); 0 if unknown or NULL. */
size_t gdn__st_dtype_size(const char *dtype);

/** Exact conversions (NaN stays NaN, inf stays inf, subnormals kept). */
float gdn__st_f16_to_f32(uint16_t h);
float gdn__st_bf16_to_f32(uint16_t b);
/** float32 -> half / bfloat16, round to nearest even; overflow gives inf,
 *  NaN stays a (quiet) NaN with its sign. For writing F16/BF16 checkpoints. */
uint16_t gdn__st_f32_to_f16(float x);
uint16_t gdn__st_f32_to_bf16(float x);

#endif /* GDN_MODEL_SAFETENSORS_H */
