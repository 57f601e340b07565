/* aggregate libdeflate throughput over 1 MiB members on T threads (a displacement-like field) */
#include <libdeflate.h>
#include <omp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
int main(){ long n=182L*218*182*3; float*f=malloc(n*4); unsigned s=1;
 for(long i=0;i<n;i++){ s=s*1664525u+1013904223u; f[i]=2.f*sinf(1e-3f*(float)(i/3)*(1+i%3))+1e-3f*(float)(s>>22);}
 unsigned char*b=(unsigned char*)f; long bytes=n*4, B=1<<20, nb=(bytes+B-1)/B;
 int ths[]={1,2,4,8,16};
 for(int lv=0;lv<=1;lv++) for(int ti=0;ti<5;ti++){ int T=ths[ti]; omp_set_num_threads(T);
  double best=1e9; size_t tot=0;
  for(int r=0;r<3;r++){ double t=omp_get_wtime(); size_t acc=0;
  #pragma omp parallel reduction(+:acc)
  { struct libdeflate_compressor*c=libdeflate_alloc_compressor(lv); unsigned char*o=malloc(2*B);
    #pragma omp for schedule(dynamic,1)
    for(long k=0;k<nb;k++){ long len=bytes-k*B<B?bytes-k*B:B; acc+=libdeflate_deflate_compress(c,b+k*B,len,o,2*B); acc+=0*libdeflate_crc32(0,b+k*B,len);}
    free(o); libdeflate_free_compressor(c);}
   t=omp_get_wtime()-t; if(t<best)best=t; tot=acc;}
  printf("level %d threads %2d: %.0f MB/s ratio %.3f\n",lv,T,bytes/best/1e6,(double)tot/bytes);}
 return 0;}
