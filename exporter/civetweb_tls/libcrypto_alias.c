/* Built as a shared object whose SONAME is "libcrypto.so", depending on libcrypto.so.3, and loaded
 * from memory before CivetWeb starts TLS: CivetWeb dlopen()s the unversioned name, which only
 * the development package provides on disk. Its symbols all come from libcrypto.so.3. */
typedef int portwatch_libcrypto_alias_is_not_empty;
