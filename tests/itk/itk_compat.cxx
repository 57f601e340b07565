// Reads ffdp's outputs with ITK itself (the library ANTs uses for every transform and image
// file) and resamples as antsApplyTransforms does; the result must match ffdp's own images.
//   itk_compat FIXED MOVING AFFINE.txt WARP.nii.gz WARPED.nii.gz [INVWARP.nii.gz FIXED_IN_MOVING.nii.gz]
// Forward: output point x (fixed space) -> warp -> affine -> moving image.
// Inverse: output point y (moving space) -> affine^-1 -> inverse warp -> fixed image.
#include <itkCompositeTransform.h>
#include <itkDisplacementFieldTransform.h>
#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageRegionConstIterator.h>
#include <itkLinearInterpolateImageFunction.h>
#include <itkMatrixOffsetTransformBase.h>
#include <itkResampleImageFilter.h>
#include <itkTransformFactory.h>
#include <itkTransformFileReader.h>
#include <cmath>
#include <cstdio>

using Image = itk::Image<float, 3>;
using Field = itk::Image<itk::Vector<double, 3>, 3>;
using Affine = itk::MatrixOffsetTransformBase<double, 3, 3>;
using Composite = itk::CompositeTransform<double, 3>;
using FieldTransform = itk::DisplacementFieldTransform<double, 3>;

static Image::Pointer read_image(const char *p) {
  auto r = itk::ImageFileReader<Image>::New();
  r->SetFileName(p);
  r->Update();
  return r->GetOutput();
}

static FieldTransform::Pointer read_field(const char *p) {
  auto r = itk::ImageFileReader<Field>::New();
  r->SetFileName(p);
  r->Update();
  auto t = FieldTransform::New();
  t->SetDisplacementField(r->GetOutput());
  return t;
}

static Affine::Pointer read_affine(const char *p) {
  itk::TransformFactoryBase::RegisterDefaultTransforms();
  auto r = itk::TransformFileReaderTemplate<double>::New();
  r->SetFileName(p);
  r->Update();
  return dynamic_cast<Affine *>(r->GetTransformList()->front().GetPointer());
}

// Is a physical point at least one voxel inside `img`? Boundary conventions differ between
// ffdp and ITK (ITK: zero displacement outside a field, nothing beyond the last voxel centre;
// ffdp: border-clamped fields, zero padding that fades over the last half voxel), so the
// strict comparison is made where neither applies; the whole-grid numbers are printed too.
static bool inside(const itk::ImageBase<3> *img, const itk::Point<double, 3> &p) {
  itk::ContinuousIndex<double, 3> c;
  img->TransformPhysicalPointToContinuousIndex(p, c);
  auto sz = img->GetLargestPossibleRegion().GetSize();
  for (int a = 0; a < 3; a++)
    if (!(c[a] >= 1.0 && c[a] <= (double)sz[a] - 2.0)) return false;
  return true;
}

// Resample `in` onto `grid` through `t`; compare with `ref` (ffdp's result).
// `pre` (may be null) maps an output point to where the displacement field is evaluated.
static int compare(const char *what, Image::Pointer in, Image::Pointer grid, Composite::Pointer t, Image::Pointer ref,
                   const itk::ImageBase<3> *field_domain, const itk::Transform<double, 3, 3> *pre) {
  auto f = itk::ResampleImageFilter<Image, Image>::New();
  f->SetInput(in);
  f->SetTransform(t);
  f->SetInterpolator(itk::LinearInterpolateImageFunction<Image, double>::New());
  f->SetOutputParametersFromImage(grid);
  f->SetDefaultPixelValue(0);
  f->Update();
  itk::ImageRegionConstIterator<Image> a(f->GetOutput(), f->GetOutput()->GetLargestPossibleRegion());
  itk::ImageRegionConstIterator<Image> b(ref, ref->GetLargestPossibleRegion());
  double num = 0, den = 0, inum = 0, iden = 0, imx = 0;
  long n = 0, ni = 0;
  for (; !a.IsAtEnd(); ++a, ++b, ++n) {
    double d = a.Get() - b.Get();
    num += d * d, den += (double)b.Get() * b.Get();
    itk::Point<double, 3> x, y;
    grid->TransformIndexToPhysicalPoint(a.GetIndex(), x);
    y = t->TransformPoint(x);
    if (!inside(field_domain, pre ? pre->TransformPoint(x) : x) || !inside(in, y)) continue;
    inum += d * d, iden += (double)b.Get() * b.Get(), imx = std::fmax(imx, std::fabs(d)), ni++;
  }
  double rel = std::sqrt(num / den), irel = std::sqrt(inum / iden);
  std::printf("%s: ITK vs ffdp relative L2 %.2e over the grid; %.2e (max |diff| %.3g) over the %ld of %ld voxels mapped "
              "at least one voxel inside the images\n",
              what, rel, irel, imx, ni, n);
  return irel < 1e-4 && ni > n / 4 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc != 6 && argc != 8) {
    std::fprintf(stderr, "usage: itk_compat FIXED MOVING AFFINE.txt WARP.nii.gz WARPED.nii.gz [INVWARP FIXED_IN_MOVING]\n");
    return 2;
  }
  try {
    auto fixed = read_image(argv[1]), moving = read_image(argv[2]);
    auto aff = read_affine(argv[3]);
    auto fwd = Composite::New();  // applied last-added first: warp, then affine
    fwd->AddTransform(aff);
    fwd->AddTransform(read_field(argv[4]));
    int bad = compare("forward (warp, affine)", moving, fixed, fwd, read_image(argv[5]), fixed, nullptr);
    if (argc == 8) {
      auto inv_aff = Affine::New();
      aff->GetInverse(inv_aff);
      auto inv = Composite::New();  // affine^-1 first, then the inverse warp
      inv->AddTransform(read_field(argv[6]));
      inv->AddTransform(inv_aff);
      bad |= compare("inverse (affine^-1, inverse warp)", fixed, moving, inv, read_image(argv[7]), fixed, inv_aff);
    }
    return bad;
  } catch (itk::ExceptionObject &e) {
    std::fprintf(stderr, "ITK error: %s\n", e.GetDescription());
    return 1;
  }
}
