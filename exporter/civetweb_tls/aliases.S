/* The two alias objects, embedded in the binary (see civetweb_tls.cc). */
    .section .rodata
    .balign 16
    .globl portwatch_libssl_alias
portwatch_libssl_alias:
    .incbin LIBSSL_ALIAS_PATH
    .globl portwatch_libssl_alias_end
portwatch_libssl_alias_end:
    .balign 16
    .globl portwatch_libcrypto_alias
portwatch_libcrypto_alias:
    .incbin LIBCRYPTO_ALIAS_PATH
    .globl portwatch_libcrypto_alias_end
portwatch_libcrypto_alias_end:
    .section .note.GNU-stack,"",@progbits
