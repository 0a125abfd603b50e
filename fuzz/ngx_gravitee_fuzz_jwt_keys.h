
/*
 * ngx_gravitee_module: the keys of the jwt and jwks fuzz targets.
 *
 * Written by fuzz/seeds-jwt.pl (do not edit): PUBLIC keys only, made with
 * the openssl CLI; the private keys that signed the tokens below and the
 * seeds were deleted.  The HMAC secret is fixed.
 */


#ifndef _NGX_GRAVITEE_FUZZ_JWT_KEYS_H_INCLUDED_
#define _NGX_GRAVITEE_FUZZ_JWT_KEYS_H_INCLUDED_


#define NGX_GRAVITEE_FUZZ_JWT_SECRET  "gravitee fuzz secret: 32 bytes!!"


/* RSA 2048, EC P-256, EC P-384, Ed25519 */

static const char *ngx_gravitee_fuzz_jwt_pems[] = {
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqca1G88rAsGt7EoEjL0I\n"
    "rR87XBVPbLCgJu6oPUI1NSKbYHep2WGPkcbzq3jePfBx45UgYx5vBnDB0XHiAaU0\n"
    "vXUcrEUxSTSN1rQ+eczqpjBv/aoxqnj/Z2szVhnnn9k+2zV5bCybDDk+T+I1gdXD\n"
    "+Q1+/XH0/fA1iDgzS/KSaIkJbheBbE53gCw1dM8bF4lWPjK9XEEVsq90Dc45r7w1\n"
    "LYGXVOEZBBa5f5gz1pyM0sI0G15oMoGCtKqGDxn5HeYzHJnrxYnfQkzYZ/ufQaT3\n"
    "JTwFs8HHS7LD/rEdpuVBe+eN/NbeYQLc6dO+n0LAdOJVSbMsslPQtts0hhXKxJaw\n"
    "ZQIDAQAB\n"
    "-----END PUBLIC KEY-----\n",

    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEenzdRTBWO5u2VPsJFbS4QArb8q55\n"
    "L6iOJXi4vhU39gJjwiSeB8vU9MYA6Sdgc4snXzmXcIJ6cc5X6Fr3Gci/gg==\n"
    "-----END PUBLIC KEY-----\n",

    "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE5tNfn92pQZlK02X52aYEk/Y9CZvu7x4K\n"
    "NFFBuh5kjUeq4rgaauzveH9WvMPW79ZnJlsQoOrOIE//7sbWszRrpZO/v/vvu7cZ\n"
    "rI7/EO4bsExXSg50QoKvJi/SGKzm287N\n"
    "-----END PUBLIC KEY-----\n",

    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAxL7GC9FmQ0SUTCVB5GccYkHOrArcwAQDw7WK12tmENk=\n"
    "-----END PUBLIC KEY-----\n",

    NULL
};


/* the same keys as a JWKS, each with a kid (RSA twice: PS256) */

static const char  ngx_gravitee_fuzz_jwt_jwks_doc[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa\",\"use\":\"sig\",\"n\":\"qca1G88rAsGt7EoEjL0Ir"
    "R87XBVPbLCgJu6oPUI1NSKbYHep2WGPkcbzq3jePfBx45UgYx5vBnDB0XHiAaU0vXUcrEUxS"
    "TSN1rQ-eczqpjBv_aoxqnj_Z2szVhnnn9k-2zV5bCybDDk-T-I1gdXD-Q1-_XH0_fA1iDgzS"
    "_KSaIkJbheBbE53gCw1dM8bF4lWPjK9XEEVsq90Dc45r7w1LYGXVOEZBBa5f5gz1pyM0sI0G"
    "15oMoGCtKqGDxn5HeYzHJnrxYnfQkzYZ_ufQaT3JTwFs8HHS7LD_rEdpuVBe-eN_NbeYQLc6"
    "dO-n0LAdOJVSbMsslPQtts0hhXKxJawZQ\",\"e\":\"AQAB\"},{\"kty\":\"RSA\",\"kid\":\"rsa-p"
    "s\",\"alg\":\"PS256\",\"n\":\"qca1G88rAsGt7EoEjL0IrR87XBVPbLCgJu6oPUI1NSKbYHep2W"
    "GPkcbzq3jePfBx45UgYx5vBnDB0XHiAaU0vXUcrEUxSTSN1rQ-eczqpjBv_aoxqnj_Z2szVh"
    "nnn9k-2zV5bCybDDk-T-I1gdXD-Q1-_XH0_fA1iDgzS_KSaIkJbheBbE53gCw1dM8bF4lWPj"
    "K9XEEVsq90Dc45r7w1LYGXVOEZBBa5f5gz1pyM0sI0G15oMoGCtKqGDxn5HeYzHJnrxYnfQk"
    "zYZ_ufQaT3JTwFs8HHS7LD_rEdpuVBe-eN_NbeYQLc6dO-n0LAdOJVSbMsslPQtts0hhXKxJ"
    "awZQ\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"kid\":\"p256\",\"crv\":\"P-256\",\"x\":\"enzdRTBWO5"
    "u2VPsJFbS4QArb8q55L6iOJXi4vhU39gI\",\"y\":\"Y8IkngfL1PTGAOknYHOLJ185l3CCenHO"
    "V-ha9xnIv4I\"},{\"kty\":\"EC\",\"kid\":\"p384\",\"crv\":\"P-384\",\"x\":\"5tNfn92pQZlK02"
    "X52aYEk_Y9CZvu7x4KNFFBuh5kjUeq4rgaauzveH9WvMPW79Zn\",\"y\":\"JlsQoOrOIE__7sb"
    "WszRrpZO_v_vvu7cZrI7_EO4bsExXSg50QoKvJi_SGKzm287N\"},{\"kty\":\"OKP\",\"kid\":\""
    "ed\",\"crv\":\"Ed25519\",\"x\":\"xL7GC9FmQ0SUTCVB5GccYkHOrArcwAQDw7WK12tmENk\"},{"
    "\"kty\":\"oct\",\"kid\":\"hs\",\"k\":\"Z3Jhdml0ZWUgZnV6eiBzZWNyZXQ6IDMyIGJ5dGVzISE\""
    "}]}";


/* a valid token per algorithm, in ngx_gravitee_jwt_algs[] order: without kid, then with */

static const char *ngx_gravitee_fuzz_jwt_tokens[] = {
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImF6cCI6IndlYiI"
    "sImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9.Wa"
    "xdV9_XZ3fvIw8sRaCWKCosZZpPSIBP_9s6nW47ZLI",

    "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImF6cCI6IndlYiI"
    "sImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9.bq"
    "vg2gCPbvvPcdCyux4mQ98USEFwXCrc1_fWBINVyibVkis2uSfYmM4QFPfXZ15B",

    "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImF6cCI6IndlYiI"
    "sImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9.Un"
    "i9K9LZfLYUeI72PE2ix4Zy4rdqicxQC5Xda0sa_fojaWpefeMNRiZ3P4kIynvxVoyBtlyf4A"
    "SAwkvtE1ydGQ",

    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImF6cCI6IndlYiI"
    "sImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9.JD"
    "fgNk0g_opHBUA4RMDtq4D67HdVRJegtN1r_A7rUnqdKrGYKThUudewXxvxuVs70fcHVkcsYO"
    "aEazTiGcr6cC5tRWlUf8POylsvyzPKLc_Ihn5ALB2krSH5RsRfnJHC909o0sJgOot8z07xHa"
    "ELYhVzp_uRQNBxBjiXimEi0DR8hSMpVItxL41bVCPYiMsAn71CWbhsjwi0YtcYYVeggF18Cz"
    "AY6WQXMn0xvFrU7qKm1mzzZtA19zkBLVDxAY_FN5LDMcix89Fz9UVmMcsqKqJCF7uJSjJlMb"
    "NBrsk6SS2PmcfaKXbjTnMYJgRhxLHSqgoAayNK700eD-LhZPRcVA",

    "eyJhbGciOiJSUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImF6cCI6IndlYiI"
    "sImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9.hP"
    "8o4772WPLsajmrSljCOth9FdDiUoBB_AYB3ngQwh0F2DReCEzB9SIJ4CpT3UdpkdOTipVkZ7"
    "qb1y73LgY2K9SDF-kf1DE7srZcuFK11Nr8UOxQO0TUFgwjo6SOqpfKzbhRj0OJYDRDeFGwD-"
    "TKQq0yL6G0Lpkt0yuAMKBNkidMFjFb0HXTmSquD28i41oOUzv32XXZez4RlW93LMEJ2dROBj"
    "DgJSQoOm2W0tI2tvqLiCkuAT3fY0wSlswIR0APFTKT5m1t2trMlTRK6d9cKBw9uwAMsXfO5K"
    "WnAC1QC-wEsCVJIIm9LtsQ81lNtWxkVahK9blCyhPs_vo1aVbbmw",

    "eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImF6cCI6IndlYiI"
    "sImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9.dd"
    "tgZ8BqMf---ZQSIU_dTwQ9ww4-a4os6mb2uzCq7Fp7dEgvQmrok3Zn_Es7a_SbmmtkooL28P"
    "JYvHiITym1yUSd-f3P6fLQu7uJR7U12s61hc88fciJLsOqvEXehezR-ZV_-WdPyCbkYfv_77"
    "Sp-ZfPGQOnlYru5uny3tvAtZqZkOI0pvugBDiBOeNnyyMHCjzKjH6ajDrNUm3w9sNWL6jrtn"
    "MYpi0mb8C6Rp0twlPvWvvjA3vpLi8BnU6Ij0YSd4pIYmpLMAxubNXZDuS1ddiXgEKRR4is8u"
    "CKm2xe8CYZ4frZz71zP9KYI39PRt3iKNbAoeu3rvJjGugQCXl4yg",

    "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImF6cCI6IndlYiI"
    "sImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9.ed"
    "jnUs8I4L6NeoZPucNt29QhkE8KSASLDC4tBZ0-reiF1oHXFAuuwkqtLmMy9hJJOMWlZDUxVh"
    "n_p5yHvmbLak3Txlgn8MRX9gDD2ufl-Lvir8IkyPRaFQSOlVbKee6cyZE4lFH3Hz3YCXObqg"
    "pNQXrf_yQtIKzUwadGaa2_mImYu07sNN4wrC13Y51ta91baCM_37JvvJ8NCu99E86hiyaosM"
    "JBNjblj8uROtwc70miHqILOLN7Ef8jP4HtVib2fiKqfIwQc17ypmnk0cAe08GCgvvqEur9_U"
    "mC20v6ETfxAaebHD8RGX33STh_DOABxV5TK6vccBJlNJH0a-X7GA",

    "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImF6cCI6IndlYiI"
    "sImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9.XV"
    "-_nOcljjUBnFDYoZQaFWukb_zYWW6TNZybmEn3OZ2Lv0puCv4qVnpOpxouDYyeVJD2_pU35q"
    "-zeGeGQ6mZTA",

    "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImF6cCI6IndlYiI"
    "sImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9.9y"
    "hkfVevcbZMy8hpe2kLLJ0rGeuwOT9-eLfjbmzZZ61BJskNrIrejKmJvkyqHOtqWnvfWFCjHn"
    "bQnM6pBCxyWGaFOgH8brFNRUwsrJMwVrK4dbnHfontJjm9FpGsVfwA",

    "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImF6cCI6IndlYiI"
    "sImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9.7p"
    "iTWfFHyMrA6IFRk3hZcB1RbJDsCEfZrB-B1V-vs4JhqFW6PS6E8wS75FeFGJIryEPQDr0Jzz"
    "O8NQ5LS0iDAA",

    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImhzIn0.eyJzdWIiOiJhbGljZSIs"
    "ImF6cCI6IndlYiIsImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQx"
    "MDI0NDQ4MDB9.Qov6I49irBkCSrhXG2IGXp6m7JqVgtMofpOVsY4Zva4",

    "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6ImhzIn0.eyJzdWIiOiJhbGljZSIs"
    "ImF6cCI6IndlYiIsImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQx"
    "MDI0NDQ4MDB9.iKCoz8BIIbtgt2Q3tbfJwnJhuW9rOFfgTh40cdtxHf1PcYyC16MJq-ffh2L"
    "iG5pK",

    "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCIsImtpZCI6ImhzIn0.eyJzdWIiOiJhbGljZSIs"
    "ImF6cCI6IndlYiIsImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQx"
    "MDI0NDQ4MDB9._xWX2b6RJaRdBCxom99jzQDQ_W_ycBZnn7LmduzhEYzl8GW1OlvbtM8gDaJ"
    "BG9AJY3RjkxtUibBwB8o1oQz3jA",

    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InJzYSJ9.eyJzdWIiOiJhbGljZSI"
    "sImF6cCI6IndlYiIsImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQ"
    "xMDI0NDQ4MDB9.Q-jZiw4Ki4prDEu0EINTYGkTEfTsGKkuVaQCj7xKQyzB1tf-_rtIl4dBGo"
    "9ortQCsnJjxms9d75ZZR6HSwceTdHyPQsO2uxDRApFzh6fFeo37BloCsv297d4ButpL-z4YB"
    "450c78Jddb4juK9M0UuNdzVPdNSecVmgImOs6t-o3Cmy6RZhjY_UI9x-SEKyNPBymSyQKjmI"
    "7vlVfjpbrt2Raoij7SNHw1AVWl2piEr9G1eQij8xtQL4KX4jl3Cvm5ffAGXPd-wPqzasS6N4"
    "H-Ol0wQCREYt1ohsVg7v79WmQ9seEZYJUojq1tUwptcOtTZ6HwVRdilxxiTkMj1DnBXQ",

    "eyJhbGciOiJSUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6InJzYSJ9.eyJzdWIiOiJhbGljZSI"
    "sImF6cCI6IndlYiIsImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQ"
    "xMDI0NDQ4MDB9.nttw2pCQhCcVMuZAq_Kdyh2KsWLdIoUIp3BTN_q3AB1jsV5Y5IEn_6cXk3"
    "59W0KWXcfvy8QquJuscPVfVt7JwGS6bMeRSgKYchT-gnYzU7nnjXkbI7bs8opTT6j52yIBju"
    "GF2DszU0iRKlaInpnpFl-VXxQTTVgED4axosbliwh3GCWcEK2Q4dnWcWjoS9pn7QYeGs_lkN"
    "jVTnIrsEDjHli_bs5VdlpfcQntF-H8z9vPH3kn90zzE4CsgZmGfgsJvaJyIzjvDIG-hrO9Ul"
    "dZZLt04Iw8L8_dv9uS9nDPWJatwWKLSWSh14vAA6vfbMhSvoy19z_hickH_cicizFOHQ",

    "eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCIsImtpZCI6InJzYSJ9.eyJzdWIiOiJhbGljZSI"
    "sImF6cCI6IndlYiIsImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQ"
    "xMDI0NDQ4MDB9.a1BKDjm7XJs2qoBfw9WjV4lEpbkXTdU2ljnpvdiKLZp71IQ-ngvtsrRbHo"
    "0fwS2nMg2pfLp5hc3xMrKbj7Dfn4T4kdjy3K0A_HUX6mkQ26PnWgDrK-QefLQxZWJNgmhTva"
    "WjWYks3f1wn3Ja0ZQXfkQw7ZWUxg0OXuJlSmYGVvpxch2kPR5aC-Ugnqetk99hmekZ5njodu"
    "HiXHipJLunC4mhjRareRIZi7nC0dMV6ydAUO9ELG_HfymyTE4a_M_jkoDQF_ikPHInGxcCzM"
    "eliOzFXYZ6vK29z0pJ8xJxX3PwuIwETYxYuq4Of56krfgmx2wUQvyFpnC24_dG8ZzURw",

    "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InJzYS1wcyJ9.eyJzdWIiOiJhbGl"
    "jZSIsImF6cCI6IndlYiIsImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHA"
    "iOjQxMDI0NDQ4MDB9.kRSHh3oFFgGzfJSPH6vBfE5sNbPbR6T6coxvks7dIJpEaHBETaXLVE"
    "qLsVaICVHnfVv0jm7AF_tFPQlfUm7AJsuxJomGq3PDBMKQ5QmdevZFcgUyrjLempQuZhfUqk"
    "cO5STumyKdF-xl1p3yCFAS-gV1M9RyIoysxkjXMCwCUlLv10e6zwL-MpV2srNOmk705eSYEh"
    "G1dSr-wHHQjT1iYXBBaj2l37Esux13RYVEG0iNxdIms92qiwqxgYohl559jd9GFoBM25Hz05"
    "7kUxqIUAFodRF-VkoQt5kIefGM_hPCl1BJgoezA7owL2CAn7y9iUM_lLQBhtV3St3XxD3yGA",

    "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InAyNTYifQ.eyJzdWIiOiJhbGljZ"
    "SIsImF6cCI6IndlYiIsImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiO"
    "jQxMDI0NDQ4MDB9.z5AIaIai87hgZ1BL-PNiuxLZ0sn6JN2f8gaAqOuUi2o_LAkrP5M6IYTL"
    "P3RDhXS3W_kGOooWerbBoI4WSpKY2A",

    "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6InAzODQifQ.eyJzdWIiOiJhbGljZ"
    "SIsImF6cCI6IndlYiIsImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiO"
    "jQxMDI0NDQ4MDB9.cf-5F8FpT3vShGVjr3pGxMRKLHVkJscWS6rq1L16rPCiwRXAIggeIiCE"
    "B9IGz4L1He8yTQ33w_9qZynsQbBdXV6Y2N0LBYNC5q6A403CRXfYbhjEFl9DOtt_BvRncnJh",

    "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImVkIn0.eyJzdWIiOiJhbGljZSIs"
    "ImF6cCI6IndlYiIsImF1ZCI6WyJvcmRlcnMiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQx"
    "MDI0NDQ4MDB9.1pjv9ZIAQ6ugevBgzpnURiv7UK4Xnh__s2RxvN2wsPwBFelTsyChXkBNGAz"
    "lQ4SliJarLPxLwqTGo7X7GQDcAg",

    NULL
};


#endif /* _NGX_GRAVITEE_FUZZ_JWT_KEYS_H_INCLUDED_ */
