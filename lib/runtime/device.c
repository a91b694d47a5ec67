/*
 * device.c - enumerate OpenCL platforms and devices, read what the library
 * decides from (limits, extensions, NVIDIA compute capability, sub-group
 * width), and resolve device selectors (GDN_DEVICE).
 *
 * Capabilities are feature-tested here once; fast paths are chosen from these
 * flags, never from the vendor name alone.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

/* cl_nv_device_attribute_query (cl_ext.h may lack them on some systems). */
#ifndef CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV
#    define CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV 0x4000
#    define CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV 0x4001
#endif
#ifndef CL_DEVICE_WARP_SIZE_NV
#    define CL_DEVICE_WARP_SIZE_NV 0x4003
#endif

static void get_str(cl_device_id d, cl_device_info what, char *buf, size_t cap)
{
    size_t n = 0;
    char  *tmp;

    buf[0] = '\0';
    if (clGetDeviceInfo(d, what, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return;
    tmp = gdn__malloc(n + 1);
    if (!tmp)
        return;
    if (clGetDeviceInfo(d, what, n, tmp, NULL) == CL_SUCCESS) {
        tmp[n] = '\0';
        gdn__strlcpy(buf, tmp, cap);
    }
    gdn__free(tmp);
}

static bool has_ext(const char *exts, const char *name)
{
    size_t      n = strlen(name);
    const char *p = exts;
    while ((p = strstr(p, name)) != NULL) {
        if ((p == exts || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
        p += n;
    }
    return false;
}

gdn_status gdn__device_query(cl_platform_id platform, cl_device_id id, struct gdn_device *dev)
{
    gdn_device_info *in = &dev->info;
    cl_device_type   type;
    cl_uint          u;
    cl_ulong         ul;
    size_t           sz;
    char            *exts;
    size_t           n = 0;

    memset(dev, 0, sizeof(*dev));
    dev->platform = platform;
    dev->id       = id;
    if (clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof(type), &type, NULL) != CL_SUCCESS)
        return GDN_STATUS_OPENCL;
    get_str(id, CL_DEVICE_NAME, in->name, sizeof(in->name));
    get_str(id, CL_DEVICE_VENDOR, in->vendor, sizeof(in->vendor));
    get_str(id, CL_DRIVER_VERSION, in->driver_version, sizeof(in->driver_version));
    get_str(id, CL_DEVICE_VERSION, in->device_version, sizeof(in->device_version));
    get_str(id, CL_DEVICE_OPENCL_C_VERSION, in->opencl_c_version, sizeof(in->opencl_c_version));
    if (clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof(in->platform_name), in->platform_name,
                          NULL) != CL_SUCCESS)
        in->platform_name[0] = '\0';
    in->platform_name[sizeof(in->platform_name) - 1] = '\0';
    if (clGetPlatformInfo(platform, CL_PLATFORM_VERSION, sizeof(dev->platform_version),
                          dev->platform_version, NULL) != CL_SUCCESS)
        dev->platform_version[0] = '\0';
    dev->platform_version[sizeof(dev->platform_version) - 1] = '\0';

    if (clGetDeviceInfo(id, CL_DEVICE_VENDOR_ID, sizeof(u), &u, NULL) == CL_SUCCESS)
        in->vendor_id = u;
    if (clGetDeviceInfo(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(u), &u, NULL) == CL_SUCCESS)
        in->compute_units = u;
    if (clGetDeviceInfo(id, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof(u), &u, NULL) == CL_SUCCESS)
        in->clock_mhz = u;
    if (clGetDeviceInfo(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof(sz), &sz, NULL) == CL_SUCCESS)
        in->max_work_group_size = (uint32_t)sz;
    if (clGetDeviceInfo(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(ul), &ul, NULL) == CL_SUCCESS)
        in->global_mem_bytes = ul;
    if (clGetDeviceInfo(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof(ul), &ul, NULL) == CL_SUCCESS)
        in->max_alloc_bytes = ul;
    if (clGetDeviceInfo(id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof(ul), &ul, NULL) == CL_SUCCESS)
        in->local_mem_bytes = ul;
    if (clGetDeviceInfo(id, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof(u), &u, NULL) == CL_SUCCESS)
        dev->mem_base_align_bytes = u / 8;
    if (dev->mem_base_align_bytes == 0)
        dev->mem_base_align_bytes = 128;

    if (type & CL_DEVICE_TYPE_GPU)
        in->flags |= GDN_DEVICE_FLAG_GPU;
    if (type & CL_DEVICE_TYPE_CPU)
        in->flags |= GDN_DEVICE_FLAG_CPU;

    if (clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, 0, NULL, &n) == CL_SUCCESS && n > 0) {
        exts = gdn__malloc(n + 1);
        if (!exts)
            return GDN_STATUS_OUT_OF_HOST_MEMORY;
        if (clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, n, exts, NULL) != CL_SUCCESS)
            exts[0] = '\0';
        exts[n] = '\0';
        if (has_ext(exts, "cl_khr_fp16"))
            in->flags |= GDN_DEVICE_FLAG_FP16;
        if (has_ext(exts, "cl_khr_fp64"))
            in->flags |= GDN_DEVICE_FLAG_FP64;
        if (has_ext(exts, "cl_khr_subgroups") || has_ext(exts, "cl_intel_subgroups"))
            in->flags |= GDN_DEVICE_FLAG_SUBGROUPS;
        if (has_ext(exts, "cl_nv_device_attribute_query")) {
            cl_uint major = 0, minor = 0, warp = 0;
            in->flags |= GDN_DEVICE_FLAG_NV_ATTR;
            if (clGetDeviceInfo(id, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, sizeof(major), &major,
                                NULL) == CL_SUCCESS &&
                clGetDeviceInfo(id, CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV, sizeof(minor), &minor,
                                NULL) == CL_SUCCESS)
                in->nv_compute_capability = major * 10 + minor;
            if (clGetDeviceInfo(id, CL_DEVICE_WARP_SIZE_NV, sizeof(warp), &warp, NULL) ==
                CL_SUCCESS)
                in->subgroup_size = warp;
            if (in->nv_compute_capability >= 80)
                in->flags |= GDN_DEVICE_FLAG_INLINE_PTX;
        }
        gdn__free(exts);
    }
    dev->is_pocl   = gdn__strcasestr(in->platform_name, "Portable Computing Language") ||
                   gdn__strcasestr(in->platform_name, "pocl");
    dev->is_nvidia = in->vendor_id == 0x10de || gdn__strcasestr(in->vendor, "nvidia");
    return GDN_STATUS_OK;
}

/* The device list is built once per process and then only read. */
static struct gdn_device *g_devs;
static int32_t            g_count = -1;

gdn_status gdn__devices(const struct gdn_device **devs, int32_t *count)
{
    cl_uint         nplat = 0;
    cl_platform_id *plats = NULL;
    int32_t         total = 0;
    cl_uint         p;

    if (g_count >= 0) {
        *devs  = g_devs;
        *count = g_count;
        return GDN_STATUS_OK;
    }
    if (clGetPlatformIDs(0, NULL, &nplat) != CL_SUCCESS || nplat == 0) {
        g_count = 0;
        *devs   = NULL;
        *count  = 0;
        return GDN_STATUS_OK;
    }
    plats = gdn__calloc(nplat, sizeof(*plats));
    if (!plats)
        return GDN_STATUS_OUT_OF_HOST_MEMORY;
    if (clGetPlatformIDs(nplat, plats, NULL) != CL_SUCCESS) {
        gdn__free(plats);
        return GDN_STATUS_OPENCL;
    }
    for (p = 0; p < nplat; p++) {
        cl_uint       nd = 0, d;
        cl_device_id *ids;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
            continue;
        ids = gdn__calloc(nd, sizeof(*ids));
        if (!ids)
            break;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, ids, NULL) == CL_SUCCESS) {
            struct gdn_device *grown = gdn__realloc(g_devs, (size_t)(total + (int32_t)nd) *
                                                                sizeof(*g_devs));
            if (grown) {
                g_devs = grown;
                for (d = 0; d < nd; d++) {
                    if (gdn__device_query(plats[p], ids[d], &g_devs[total]) == GDN_STATUS_OK) {
                        g_devs[total].info.platform_index = (int32_t)p;
                        g_devs[total].info.device_index   = (int32_t)d;
                        total++;
                    }
                }
            }
        }
        gdn__free(ids);
    }
    gdn__free(plats);
    g_count = total;
    *devs   = g_devs;
    *count  = g_count;
    return GDN_STATUS_OK;
}

gdn_status gdn__device_select(const char *sel, int32_t *index)
{
    const struct gdn_device *devs;
    int32_t                  n, i;
    gdn_status               st = gdn__devices(&devs, &n);

    if (st)
        return st;
    if (n == 0)
        return GDN_STATUS_NO_DEVICE;
    if (sel && *sel) {
        int  p, d, consumed = 0;
        char tail;
        if (sscanf(sel, "%d:%d%n", &p, &d, &consumed) == 2 && sel[consumed] == '\0') {
            for (i = 0; i < n; i++)
                if (devs[i].info.platform_index == p && devs[i].info.device_index == d) {
                    *index = i;
                    return GDN_STATUS_OK;
                }
            return GDN_STATUS_NO_DEVICE;
        }
        if (sscanf(sel, "%d%c", &p, &tail) == 1) {
            if (p < 0 || p >= n)
                return GDN_STATUS_NO_DEVICE;
            *index = p;
            return GDN_STATUS_OK;
        }
        for (i = 0; i < n; i++)
            if (gdn__strcasestr(devs[i].info.name, sel) ||
                gdn__strcasestr(devs[i].info.platform_name, sel)) {
                *index = i;
                return GDN_STATUS_OK;
            }
        return GDN_STATUS_NO_DEVICE;
    }
    for (i = 0; i < n; i++)
        if (devs[i].info.flags & GDN_DEVICE_FLAG_GPU) {
            *index = i;
            return GDN_STATUS_OK;
        }
    *index = 0;
    return GDN_STATUS_OK;
}

gdn_status gdn_device_count(int32_t *count)
{
    const struct gdn_device *devs;
    if (!count)
        return GDN_STATUS_INVALID_ARGUMENT;
    *count = 0;
    return gdn__devices(&devs, count);
}

gdn_status gdn_device_get_info(int32_t index, gdn_device_info *info)
{
    const struct gdn_device *devs;
    int32_t                  n;
    gdn_status               st;

    if (!info)
        return GDN_STATUS_INVALID_ARGUMENT;
    st = gdn__devices(&devs, &n);
    if (st)
        return st;
    if (index < 0 || index >= n)
        return GDN_STATUS_INVALID_ARGUMENT;
    *info = devs[index].info;
    return GDN_STATUS_OK;
}

gdn_status gdn_device_default(int32_t *index)
{
    if (!index)
        return GDN_STATUS_INVALID_ARGUMENT;
    *index = -1;
    return gdn__device_select(getenv("GDN_DEVICE"), index);
}
