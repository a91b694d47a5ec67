/*
 * gdn_cl.h - OpenCL interop for libgdn: run libgdn on the application's own
 * OpenCL context and queue, and share buffers without copies.
 *
 * Include this after (or instead of) gdn.h; it pulls in <CL/cl.h>. Define
 * CL_TARGET_OPENCL_VERSION before including it if your build does not.
 */
#ifndef GDN_CL_H
#define GDN_CL_H

#ifndef CL_TARGET_OPENCL_VERSION
#    define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "gdn.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Create a libgdn context on the application's OpenCL objects. The three
 *  handles are borrowed and retained (clRetain*); gdn_context_destroy releases
 *  only libgdn's references. The queue must belong to cl_ctx and device and be
 *  in-order; profiling is used when the queue has it enabled. params may be
 *  NULL; its device_index is ignored.
 *  @return OK; INVALID_ARGUMENT (NULL handle, queue of another device or
 *  context, out-of-order queue); OPENCL; OUT_OF_HOST_MEMORY. */
GDN_API gdn_status gdn_context_create_from_cl(cl_context cl_ctx, cl_device_id device,
                                              cl_command_queue queue,
                                              const gdn_context_params *params,
                                              gdn_context **out);

/** Wrap an existing buffer as a tensor. mem is borrowed and retained; the
 *  tensor views bytes [offset, offset + numel * dtype size) of it, which must
 *  lie inside the buffer. A non-zero offset must be a multiple of the device's
 *  CL_DEVICE_MEM_BASE_ADDR_ALIGN (in bytes); the tensor then holds a
 *  sub-buffer of mem. shape is copied. gdn_tensor_destroy releases libgdn's
 *  references only; the data stays the application's.
 *  @return OK; INVALID_ARGUMENT (NULL, bad shape, range outside the buffer,
 *  buffer of another OpenCL context); OPENCL. */
GDN_API gdn_status gdn_tensor_wrap_cl_mem(gdn_context *ctx, cl_mem mem, size_t offset,
                                          gdn_dtype dtype, int32_t ndim, const int64_t *shape,
                                          gdn_tensor **out);

/** The buffer whose byte 0 is the tensor's first element (borrowed; NULL for
 *  NULL): the tensor's own buffer, the wrapped cl_mem, or the sub-buffer made
 *  for a wrapped cl_mem with a non-zero offset. */
GDN_API cl_mem gdn_tensor_cl_mem(const gdn_tensor *t);

/** The context's queue, device and OpenCL context (borrowed; NULL for NULL).
 *  Work you enqueue on the queue is ordered with libgdn's. */
GDN_API cl_command_queue gdn_context_cl_queue(const gdn_context *ctx);
GDN_API cl_device_id     gdn_context_cl_device(const gdn_context *ctx);
GDN_API cl_context       gdn_context_cl_context(const gdn_context *ctx);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GDN_CL_H */
