import cv2
import numpy as np

from posecore.estimators.crops import (apply_affine, box_to_center_scale, crop_matrix, crop_to_image, image_to_crop,
                                       warp_crops)

SIZE = (192, 256)


def test_boxes_grow_to_4_by_3_and_get_padded():
    boxes = np.array([[0, 0, 100, 100], [10, 20, 40, 220]], np.float32)  # square; tall and thin
    centers, scales = box_to_center_scale(boxes, SIZE, padding=1.25)
    np.testing.assert_allclose(centers, [[50, 50], [25, 120]])
    np.testing.assert_allclose(scales, [[100 * 1.25, 100 / 0.75 * 1.25], [200 * 0.75 * 1.25, 200 * 1.25]])
    np.testing.assert_allclose(scales[:, 0] / scales[:, 1], 0.75)


def test_crop_and_image_coordinates_invert_each_other():
    rng = np.random.default_rng(0)
    centers = rng.uniform(50, 500, (3, 2)).astype(np.float32)
    scales = rng.uniform(50, 300, (3, 1)).astype(np.float32) * np.array([[0.75, 1.0]], np.float32)
    pts = rng.uniform(0, 600, (3, 17, 2)).astype(np.float32)
    np.testing.assert_allclose(crop_to_image(image_to_crop(pts, centers, scales, SIZE), centers, scales, SIZE), pts,
                               rtol=1e-5, atol=1e-3)
    m = crop_matrix(centers[0], scales[0], SIZE)
    np.testing.assert_allclose(apply_affine(pts[0], m), image_to_crop(pts[:1], centers[:1], scales[:1], SIZE)[0],
                               atol=1e-3)
    # The region's corners land on the crop's outer edges (pixel-centre convention).
    corner = centers[:1, None] - scales[:1, None] / 2
    np.testing.assert_allclose(image_to_crop(corner, centers[:1], scales[:1], SIZE), [[[-0.5, -0.5]]], atol=1e-4)


def test_warp_puts_image_pixels_where_the_maths_says():
    image = np.zeros((300, 400, 3), np.uint8)
    image[123, 77] = 255  # (x=77, y=123)
    centers = np.array([[100.5, 130.5]], np.float32)  # a 1:1 crop of even size: pixel centres map to pixel centres
    scales = np.array([[192.0, 256.0]], np.float32)  # 1:1
    crop = warp_crops(image, centers, scales, SIZE)[0]
    y, x = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    np.testing.assert_allclose(image_to_crop(np.array([[[77, 123]]], np.float32), centers, scales, SIZE)[0, 0], [x, y])
    # Zoomed 2x: the bright pixel's blob is centred on the mapped point.
    crop2 = warp_crops(image, centers, scales / 2, SIZE)[0, ..., 0].astype(np.float64)
    ys, xs = np.mgrid[: SIZE[1], : SIZE[0]]
    centroid = [(xs * crop2).sum() / crop2.sum(), (ys * crop2).sum() / crop2.sum()]
    expected = image_to_crop(np.array([[[77, 123]]], np.float32), centers, scales / 2, SIZE)[0, 0]
    np.testing.assert_allclose(centroid, expected, atol=0.3)


def test_rotation_matches_opencv():
    center, scale = np.array([200.0, 150.0]), np.array([192.0, 256.0])  # 1:1 so only the rotation differs
    m = crop_matrix(center, scale, SIZE, rotation=30)
    ref = cv2.getRotationMatrix2D((200.0, 150.0), 30, 1.0)
    ref[:, 2] += np.array([(SIZE[0] - 1) / 2, (SIZE[1] - 1) / 2]) - center
    np.testing.assert_allclose(m, ref, atol=1e-9)
