

def test_array_and_misc_validators():
    with pytest.raises(TypeError, match="x must be a numpy.ndarray of float32 or float64, got list"):
        check_float_array("x", [1.0])
    with pytest.raises(ValueError, match=r"x contains 2 NaN or infinite value\(s\)"):
        check_float_array("x", np.array([np.nan, np.inf, 1.0]))
    with pytest.raises(ValueError, match=r"x must have shape \(3, \?\), got \(2, 2\)"):
        check_float_array("x", np.zeros((2, 2)), shape=(3, None))
    with pytest.raises(TypeError, match="n must be an integer, got bool"):
        check_int("n", True)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        check_rng("rng", np.random.RandomState(0))
